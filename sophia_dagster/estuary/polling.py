"""Waiting for tasks to turn healthy, by polling their status."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sophia_dagster.estuary.errors import TaskNotReadyError
from sophia_dagster.estuary.models import TaskStatus


def wait_until_healthy(
    read_status: Callable[[Sequence[str]], list[TaskStatus]],
    names: Sequence[str],
    timeout_seconds: float,
    interval_seconds: float,
) -> list[TaskStatus]:
    """Poll ``read_status`` until every task reports ``ok`` (or ``taskDisabled``); else ``TaskNotReadyError``."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        statuses = read_status(names)
        behind = [s for s in statuses if not s.healthy]
        if not behind:
            return statuses
        if time.monotonic() > deadline:
            detail = "; ".join(f"{s.catalog_name}: {s.status} {s.message}".strip() for s in behind)
            raise TaskNotReadyError(f"not healthy after {timeout_seconds:.1f}s: {detail}")
        time.sleep(interval_seconds)

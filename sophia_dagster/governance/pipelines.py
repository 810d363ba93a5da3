"""Pipeline health: each Estuary task ok, disabled only when the catalog says so, and no errors or
failures in its recent stats (Estuary's stats in prod, the embedded data plane's own locally)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.estuary.runtime import EstuaryRuntime


@dataclass(frozen=True)
class TaskHealth:
    """What governance concludes about one task."""

    task: str
    status: str
    message: str
    disabled_in_catalog: bool
    errors: int
    failures: int
    docs: int
    last_activity: datetime | None
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def task_health(runtime: EstuaryRuntime, catalog: Catalog, task: str, stats_hours: int = 24) -> TaskHealth:
    """Judge ``task`` from its current status and its last ``stats_hours`` hours of stats.

    Args:
        runtime: the Estuary runtime (control plane in prod, embedded data plane locally).
        catalog: the catalog, which says whether the task is meant to be disabled.
        task: the task's catalog name.
        stats_hours: how much recent history to read.

    Example:
        >>> task_health(workspace, load_catalog(PLATFORM_CATALOG_DIR), "sophia/postgres-cdc").passed
    """
    (status,) = runtime.status([task])
    rows = runtime.stats([task], since=datetime.now(UTC) - timedelta(hours=stats_hours))
    errors, failures = sum(r.errors for r in rows), sum(r.failures for r in rows)
    active = [r.ts for r in rows if r.docs_written_by_me or r.docs_read_by_me]
    disabled_in_catalog = catalog.tasks[task].shards.disable
    problems = []
    if status.status == "taskDisabled" and not disabled_in_catalog:
        problems.append("the task is paused but the catalog says it runs (shards.disable is false)")
    elif status.status not in ("ok", "taskDisabled"):
        problems.append(f"status {status.status}: {status.message}")
    if errors or failures:
        problems.append(f"{errors} errors and {failures} failures in the last {stats_hours} h of stats")
    return TaskHealth(
        task,
        status.status,
        status.message,
        disabled_in_catalog,
        errors,
        failures,
        sum(r.docs_written_by_me for r in rows),
        max(active, default=None),
        tuple(problems),
    )

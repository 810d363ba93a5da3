"""What the embedded data plane remembers between processes, under ``<state dir>/flow/``:
publications, paused tasks, the last run's outcome, and hourly stats shaped like Estuary's ``catalog_stats``.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class FlowState:
    """A small JSON store shared by every process using the same state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir).resolve() / "flow"
        self.file = self.root / "state.json"

    def lock_path(self, capture: str) -> Path:
        """The file whose lock marks ``capture`` as running in some process."""
        return self.root / ("run-" + capture.replace("/", "_") + ".lock")

    @contextmanager
    def runner_lock(self, capture: str) -> Iterator[bool]:
        """Hold ``capture``'s runner lock; yields False when another process keeps running it."""
        path = self.lock_path(capture)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def _edit(self) -> Iterator[dict[str, Any]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "state.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            data = self.read()
            yield data
            tmp = self.file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(self.file)

    def read(self) -> dict[str, Any]:
        """The whole store (empty when nothing ran yet)."""
        try:
            return json.loads(self.file.read_text())
        except FileNotFoundError:
            return {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"data-plane state {self.file} is corrupt ({exc}); move it aside to start afresh"
            ) from None

    def task(self, name: str) -> dict[str, Any]:
        """What is known of one task."""
        return self.read().get("tasks", {}).get(name, {})

    def publish(self, names: list[str]) -> str:
        """Record a publication of ``names``; returns its id (16 hex digits, like Estuary's)."""
        pub_id = secrets.token_hex(8)
        with self._edit() as data:
            for name in names:
                data.setdefault("tasks", {}).setdefault(name, {})["last_pub_id"] = pub_id
        return pub_id

    def set_disabled(self, name: str, disabled: bool) -> str:
        """Pause or resume a task; returns the publication id of the change."""
        pub_id = secrets.token_hex(8)
        with self._edit() as data:
            task = data.setdefault("tasks", {}).setdefault(name, {})
            task.update(disabled=disabled, last_pub_id=pub_id)
        return pub_id

    def record_run(self, names: list[str], error: str | None, lsn: int | None = None) -> None:
        """Remember how the last run of ``names`` ended (``error`` None when it succeeded)."""
        now = datetime.now(UTC).isoformat()
        with self._edit() as data:
            for name in names:
                task = data.setdefault("tasks", {}).setdefault(name, {})
                task.update(last_run=now, error=error)
                if lsn is not None:
                    task["lsn"] = lsn
                if error:
                    task["failures"] = task.get("failures", 0) + 1

    def add_stats(self, name: str, per_collection: Mapping[str, tuple[int, int]], written: bool) -> None:
        """Count documents and bytes ``name`` moved per collection in the current hour bucket.

        ``written`` says whether the task wrote them (a capture) or read them (a materialization).
        """
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
        with self._edit() as data:
            bucket = data.setdefault("stats", {}).setdefault(name, {}).setdefault(hour, {"bindings": {}})
            verb = "written_by_me" if written else "read_by_me"
            for collection, (docs, size) in per_collection.items():
                bucket[f"docs_{verb}"] = bucket.get(f"docs_{verb}", 0) + docs
                bucket[f"bytes_{verb}"] = bucket.get(f"bytes_{verb}", 0) + size
                binding = bucket["bindings"].setdefault(collection, {"docs": 0, "bytes": 0})
                binding["docs"] += docs
                binding["bytes"] += size

    def add_moved(self, tasks: Iterable[str], moved: Mapping[str, Mapping[str, int]]) -> None:
        """Add what a run moved per collection (inserted, updated, deleted, backfilled) to each task's unreported
        counts: whichever asset of a task reports next shows what moved into it since its last report."""
        if not moved:
            return
        with self._edit() as data:
            for task in tasks:
                pending = data.setdefault("unreported", {}).setdefault(task, {})
                for collection, counts in moved.items():
                    bucket = pending.setdefault(collection, {})
                    for what, n in counts.items():
                        bucket[what] = bucket.get(what, 0) + n

    def take_moved(self, task: str, collections: set[str]) -> dict[str, dict[str, int]]:
        """The unreported counts of ``collections`` for ``task``, now marked reported."""
        with self._edit() as data:
            pending = data.setdefault("unreported", {}).setdefault(task, {})
            return {collection: pending.pop(collection) for collection in collections if collection in pending}

    def stats(self, name: str) -> dict[str, dict[str, Any]]:
        """Hourly buckets of ``name`` by their ISO start time."""
        return self.read().get("stats", {}).get(name, {})

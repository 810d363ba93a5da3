"""Stats arithmetic: the buckets of ``catalog_stats_{hourly,daily,monthly}`` and per-binding counters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sophia_dagster.estuary.models import BindingStats

GRAINS = ("hourly", "daily", "monthly")
STATS_COLUMNS = (
    "catalog_name,grain,ts,docs_written_by_me,bytes_written_by_me,docs_read_by_me,bytes_read_by_me,"
    "docs_written_to_me,bytes_written_to_me,docs_read_from_me,bytes_read_from_me,warnings,errors,failures,"
    "usage_seconds,flow_document"
)


def floor_to_grain(moment: datetime, grain: str) -> datetime:
    """Start of the stats bucket holding ``moment`` (stats rows are keyed by bucket start)."""
    if grain not in GRAINS:
        raise ValueError(f"stats grain {grain!r} is not one of {', '.join(GRAINS)}")
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if grain == "hourly":
        return moment
    moment = moment.replace(hour=0)
    return moment if grain == "daily" else moment.replace(day=1)


def binding_stats(document: Mapping[str, Any] | None) -> dict[str, BindingStats]:
    """Per-collection docs/bytes from a stats ``flow_document`` (``taskStats.capture|materialize[c].out``)."""
    task_stats = (document or {}).get("taskStats") or {}
    result: dict[str, BindingStats] = {}
    for kind in ("capture", "materialize"):
        for collection, combiner in (task_stats.get(kind) or {}).items():
            out = (combiner or {}).get("out") or {}
            result[collection] = BindingStats(docs=out.get("docsTotal", 0), bytes=out.get("bytesTotal", 0))
    return result

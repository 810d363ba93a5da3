"""The real flow end to end on this machine: seed the demo source -> backfill -> a burst of live changes ->
caught up, with per-table row counts of the source next to the warehouse's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from sophia_dagster.dataplane.pgoutput import lsn_to_str
from sophia_dagster.dataplane.runtime import LocalDataPlane
from sophia_dagster.embedded.demo import TABLES, generate_changes, seed_demo
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource


def source_and_warehouse_counts(plane: LocalDataPlane, task: str) -> dict[str, dict[str, int]]:
    """Rows of each demo table in the source, and live rows of its warehouse table, as ``task`` moved them."""
    dsn = plane.source_dsn()
    plan = plane.plan(task)
    live = "" if plan.hard_delete else " WHERE \"_meta/op\" <> 'd'"
    with (
        psycopg.connect(dsn) as source,
        embedded_snowflake_resource(plane.state_dir, plan.database, plan.schema).get_connection() as warehouse,
    ):
        cursor = warehouse.cursor()
        counts = {}
        for table in TABLES:
            cursor.execute(f"SELECT COUNT(*) FROM {table}{live}")
            counts[table] = {
                "source": source.execute(f"SELECT count(*) FROM {table}").fetchone()[0],
                "warehouse": cursor.fetchone()[0],
            }
    return counts


def run_demo(
    plane: LocalDataPlane, task: str, changes: int = 2_000, say: Callable[[str], Any] = print
) -> dict[str, dict[str, int]]:
    """Seed, backfill, stream a burst of ``changes`` through ``task`` and catch up; returns the counts per table."""
    dsn = plane.source_dsn()
    say("seeded the demo source" if seed_demo(dsn) else "demo source already seeded")
    first = plane.run(task)
    say(f"backfill: {first.backfilled or 'already done'}; caught up at {lsn_to_str(first.lsn)}")
    burst = generate_changes(dsn, changes)
    say(f"live changes committed in PostgreSQL: {burst}")
    second = plane.run(task)
    say(f"streamed {dict(second.totals())} in {second.duration_seconds:.2f}s; lag {second.lag_bytes} bytes")
    counts = source_and_warehouse_counts(plane, task)
    report_counts(counts, say)
    return counts


def report_counts(counts: dict[str, dict[str, int]], say: Callable[[str], Any] = print) -> bool:
    """Say the counts table by table; True when every table matches."""
    for table, pair in counts.items():
        mark = "ok" if pair["source"] == pair["warehouse"] else "MISMATCH"
        say(f"  {table:<14} source {pair['source']:>6}  warehouse {pair['warehouse']:>6}  {mark}")
    return all(pair["source"] == pair["warehouse"] for pair in counts.values())

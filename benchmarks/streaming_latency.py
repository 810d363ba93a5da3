"""Streaming latency of the embedded data plane: commit in PostgreSQL -> row visible in the warehouse.

Writes ~1,000 changes/s (transactions of 20 inserts) for ``seconds`` while continuous mode runs, and polls the
warehouse for the highest visible id. Baseline measured in the same run: one direct warehouse INSERT + COMMIT +
SELECT round trip (the least a change can take to become visible there).
Run: ``python benchmarks/streaming_latency.py [seconds]``.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time

import psycopg
from backfill import COLUMNS, bench_catalog, embedded_engines

from sophia_dagster.dataplane.runtime import LocalDataPlane
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource

RATE, PER_TRANSACTION = 1_000, 20


def _write(dsn: str, seconds: float, committed: dict[int, float]) -> None:
    with psycopg.connect(dsn) as conn:
        next_id, started = 1, time.monotonic()
        while time.monotonic() - started < seconds:
            ids = range(next_id, next_id + PER_TRANSACTION)
            with conn.transaction():
                conn.cursor().executemany("INSERT INTO bench VALUES (%s, 'x', 1.0, now(), true)", [(i,) for i in ids])
            now = time.monotonic()
            committed.update(dict.fromkeys(ids, now))
            next_id += PER_TRANSACTION
            time.sleep(max(0.0, started + next_id / RATE - time.monotonic()))


def _poll(cursor: object, committed: dict[int, float], visible: dict[int, float], done: threading.Event) -> None:
    seen = 0
    while not done.is_set() or seen < max(committed, default=0):
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM bench")
        top, now = int(cursor.fetchone()[0]), time.monotonic()
        visible.update(dict.fromkeys(range(seen + 1, top + 1), now))
        seen = max(seen, top)
        time.sleep(0.01)


def _baseline(cursor: object, rounds: int = 50) -> float:
    cursor.execute("CREATE TABLE IF NOT EXISTS direct (id INT)")
    took = []
    for i in range(rounds):
        started = time.monotonic()
        cursor.execute("BEGIN")
        cursor.execute("INSERT INTO direct VALUES (%s)", (i,))
        cursor.execute("COMMIT")
        cursor.execute("SELECT MAX(id) FROM direct")
        cursor.fetchone()
        took.append(time.monotonic() - started)
    return statistics.median(took)


def main(seconds: float = 20.0) -> None:
    with embedded_engines("sophia-latency-") as (state_dir, dsn):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE bench ({COLUMNS})")
        plane = LocalDataPlane(
            state_dir=str(state_dir),
            catalog_path=str(bench_catalog(state_dir.parent)),
            warehouse_database="SOPHIA",
            warehouse_schema="RAW",
        )
        plane.run("bench/pg")
        stop, done = threading.Event(), threading.Event()
        runner = threading.Thread(target=plane.run, args=("bench/pg",), kwargs={"until_caught_up": False, "stop": stop})
        runner.start()
        committed: dict[int, float] = {}
        visible: dict[int, float] = {}
        with embedded_snowflake_resource(state_dir, "BENCH", "RAW").get_connection() as conn:
            cursor = conn.cursor()
            poller = threading.Thread(target=_poll, args=(cursor, committed, visible, done))
            poller.start()
            _write(dsn, seconds, committed)
            done.set()
            poller.join(timeout=60)
            stop.set()
            runner.join()
            baseline = _baseline(cursor)
        latencies = sorted(visible[i] - committed[i] for i in committed if i in visible)
        p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
        print(
            f"changes: {len(committed):,} in {seconds:.0f} s ({len(committed) / seconds:,.0f}/s), seen {len(latencies):,}"
        )
        print(f"commit -> visible p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
        print(f"baseline direct warehouse write+read round trip: {baseline * 1000:.0f} ms")
        print(f"ratio p50 / baseline: {p50 / baseline:.1f}x, p95 / baseline: {p95 / baseline:.1f}x")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 20.0)

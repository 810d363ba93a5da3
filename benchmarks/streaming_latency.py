"""Streaming latency of the embedded data plane: commit in PostgreSQL -> row visible in the warehouse.

While continuous mode runs, writes inserts (transactions of 20) at a fixed rate for ``seconds`` per step and
polls the warehouse for the highest visible id. Steps go up from 250 changes/s, doubling, until p95 lag
reaches 1 s or the writer cannot keep the rate (always through 1,000 changes/s). Reports p95 at 1,000 changes/s (goal: under 100 ms) and the
highest sustained rate whose p95 stays under 1 s. Baseline measured in the same run: one direct warehouse
INSERT + COMMIT + SELECT round trip (the least a change can take to become visible there).
Run: ``python benchmarks/streaming_latency.py [seconds per step]``.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from dataclasses import dataclass

import psycopg
from backfill import COLUMNS, bench_catalog, embedded_engines

from sophia_dagster.dataplane.runtime import LocalDataPlane
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource

PER_TRANSACTION = 20
RATES = (250, 500, 1_000, 2_000, 4_000, 8_000, 16_000)
LAG_LIMIT_SECONDS = 1.0


@dataclass
class Step:
    """One rate step: what was written and how long it took to become visible."""

    rate: int
    achieved: float
    p50: float
    p95: float
    missing: int


def _write(dsn: str, first_id: int, rate: int, seconds: float, committed: dict[int, float]) -> float:
    """Insert at ``rate`` changes/s for ``seconds``; returns the rate achieved."""
    with psycopg.connect(dsn) as conn:
        next_id, started = first_id, time.monotonic()
        while time.monotonic() - started < seconds:
            ids = range(next_id, next_id + PER_TRANSACTION)
            with conn.transaction():
                conn.cursor().executemany("INSERT INTO bench VALUES (%s, 'x', 1.0, now(), true)", [(i,) for i in ids])
            now = time.monotonic()
            committed.update(dict.fromkeys(ids, now))
            next_id += PER_TRANSACTION
            time.sleep(max(0.0, started + (next_id - first_id) / rate - time.monotonic()))
        return (next_id - first_id) / (time.monotonic() - started)


def _poll(cursor: object, committed: dict[int, float], visible: dict[int, float], stop: threading.Event) -> None:
    seen = 0
    while not stop.is_set():
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


def _step(dsn: str, rate: int, seconds: float, committed: dict[int, float], visible: dict[int, float]) -> Step:
    first = max(committed, default=0) + 1
    achieved = _write(dsn, first, rate, seconds, committed)
    ids = [i for i in committed if i >= first]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(i in visible for i in ids[-1:]):
        time.sleep(0.05)
    lags = sorted(visible[i] - committed[i] for i in ids if i in visible)
    if not lags:
        return Step(rate, achieved, float("inf"), float("inf"), len(ids))
    return Step(rate, achieved, lags[len(lags) // 2], lags[int(len(lags) * 0.95)], len(ids) - len(lags))


def main(seconds: float = 8.0) -> None:
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
        steps: list[Step] = []
        with embedded_snowflake_resource(state_dir, "BENCH", "RAW").get_connection() as conn:
            cursor = conn.cursor()
            poller = threading.Thread(target=_poll, args=(cursor, committed, visible, done))
            poller.start()
            try:
                for rate in RATES:
                    steps.append(_step(dsn, rate, seconds, committed, visible))
                    last = steps[-1]
                    print(
                        f"{rate:>6,}/s target, {last.achieved:>7,.0f}/s written: p50 {last.p50 * 1000:>6.0f} ms, "
                        f"p95 {last.p95 * 1000:>6.0f} ms, not visible after 30 s: {last.missing}"
                    )
                    failed = last.p95 >= LAG_LIMIT_SECONDS or last.missing or last.achieved < 0.9 * rate
                    if failed and rate >= 1_000:
                        break
            finally:
                done.set()
                poller.join(timeout=60)
                stop.set()
                runner.join()
            baseline = _baseline(cursor)
        at_1000 = next((s for s in steps if s.rate == 1_000), None)
        sustained = max(
            (s.rate for s in steps if s.p95 < LAG_LIMIT_SECONDS and not s.missing and s.achieved >= 0.9 * s.rate),
            default=0,
        )
        print(f"baseline direct warehouse write+read round trip: {baseline * 1000:.0f} ms")
        if at_1000:
            print(
                f"at 1,000 changes/s: p50 {at_1000.p50 * 1000:.0f} ms, p95 {at_1000.p95 * 1000:.0f} ms "
                f"(goal p95 < 100 ms); p95 / baseline: {at_1000.p95 / baseline:.1f}x"
            )
        print(f"highest sustained rate with p95 < 1 s: {sustained:,} changes/s")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 8.0)

"""Governance speed: the whole `governance_daily` run over the demo graph, and the parity check on a
1,000,000-row table against a naive fetch-all-rows-and-compare of the same table, in the same run.

Parity computes bucketed key checksums inside PostgreSQL and inside the warehouse and only lists the keys
of differing buckets; the baseline pulls every row of both tables into Python and compares them.
Run: ``python benchmarks/governance.py [rows]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import psycopg

from sophia_dagster.config import PLATFORM_CATALOG_DIR
from sophia_dagster.dataplane.runtime import LocalDataPlane
from sophia_dagster.embedded.demo import generate_changes, seed_demo
from sophia_dagster.embedded.postgres import ensure_embedded_postgres, stop_embedded_postgres
from sophia_dagster.governance import parity
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource, stop_embedded_warehouse

COLUMNS = "id, 'name-' || id AS name, (id % 100000) / 100.0 AS amount, id % 7 = 0 AS active"


def make_tables(dsn: str, state_dir: Path, rows: int, missing: int) -> None:
    """The same ``rows``-row table in PostgreSQL and in the warehouse, minus one warehouse row (``missing``)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_parity")
        conn.execute(f"CREATE TABLE bench_parity AS SELECT {COLUMNS} FROM generate_series(1, {rows}) AS g(id)")
        conn.execute("ALTER TABLE bench_parity ADD PRIMARY KEY (id)")
    with embedded_snowflake_resource(state_dir).get_connection() as wh:
        cursor = wh.cursor()
        cursor.execute("CREATE DATABASE IF NOT EXISTS BENCH")
        cursor.execute("CREATE SCHEMA IF NOT EXISTS BENCH.RAW")
        cursor.execute(
            f"CREATE OR REPLACE TABLE BENCH.RAW.BENCH_PARITY AS SELECT {COLUMNS}, 'c' AS \"_meta/op\" "
            f"FROM (SELECT SEQ8() + 1 AS id FROM TABLE(GENERATOR(ROWCOUNT => {rows})))"
        )
        cursor.execute(f"DELETE FROM BENCH.RAW.BENCH_PARITY WHERE ID = {missing}")


def naive(dsn: str, state_dir: Path) -> tuple[float, set]:
    """Fetch every row of both tables and compare them in Python (by key and name: the engines render
    decimals and booleans differently, which a real comparison would have to normalize too)."""
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        source = {(int(i), n) for i, n, _, _ in conn.execute("SELECT id, name, amount, active FROM bench_parity")}
    with embedded_snowflake_resource(state_dir).get_connection() as wh:
        cursor = wh.cursor()
        cursor.execute("SELECT ID, NAME, AMOUNT, ACTIVE FROM BENCH.RAW.BENCH_PARITY WHERE \"_meta/op\" <> 'd'")
        warehouse = {(int(i), n) for i, n, _, _ in cursor.fetchall()}
    return time.perf_counter() - started, {str(row[0]) for row in source ^ warehouse}


def bucketed(dsn: str, state_dir: Path) -> tuple[float, parity.ParityResult]:
    """The governance parity check's comparison."""
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, embedded_snowflake_resource(state_dir).get_connection() as wh:
        cursor = wh.cursor()

        def warehouse(sql: str) -> list:
            cursor.execute(sql)
            return cursor.fetchall()

        result = parity.compare(
            parity.ParitySide(lambda sql: conn.execute(sql).fetchall(), parity.POSTGRES, "bench_parity", ['"id"']),
            parity.ParitySide(warehouse, parity.SNOWFLAKE, "BENCH.RAW.BENCH_PARITY", ["ID"], "\"_meta/op\" <> 'd'"),
        )
    return time.perf_counter() - started, result


def governance_run(state_dir: Path) -> tuple[float, float, bool]:
    """Seed the demo, backfill, stream a burst, then time `governance_daily` (in-process executor, as scheduled)."""
    plane = LocalDataPlane(
        catalog_path=str(PLATFORM_CATALOG_DIR),
        state_dir=str(state_dir),
        warehouse_database="SOPHIA",
        warehouse_schema="RAW",
    )
    dsn = plane.source_dsn()
    seed_demo(dsn)
    plane.run("sophia/postgres-cdc")
    generate_changes(dsn, 2_000)
    plane.run("sophia/postgres-cdc")
    os.environ["STATE_DIR"] = str(state_dir)
    from sophia_dagster.definitions import defs

    started = time.perf_counter()
    loaded = defs()
    load_seconds = time.perf_counter() - started
    job = loaded.resolve_job_def("governance_daily")
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
    return load_seconds, time.perf_counter() - started, result.success


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp)
        try:
            load_seconds, run_seconds, ok = governance_run(state_dir)
            print(
                f"governance_daily over the demo graph: {run_seconds:.1f} s ({'passed' if ok else 'FAILED'}); "
                f"loading the definitions {load_seconds:.1f} s"
            )
            dsn = ensure_embedded_postgres(state_dir)
            missing = rows // 3
            started = time.perf_counter()
            make_tables(dsn, state_dir, rows, missing)
            print(f"made a {rows:,}-row table on both sides in {time.perf_counter() - started:.1f} s")
            fast, result = bucketed(dsn, state_dir)
            slow, differing = naive(dsn, state_dir)
            assert result.missing_in_warehouse == [str(missing)] and differing == {str(missing)}, (
                result,
                len(differing),
            )
            print(
                f"parity, bucketed checksums: {fast:.2f} s ({result.buckets} buckets, "
                f"{result.differing_buckets} differing, keys {result.sample_keys(20)})"
            )
            print(f"naive fetch-all-and-compare: {slow:.2f} s (found {sorted(differing)})")
            print(f"ratio: bucketed parity takes {fast / slow:.2f}x the naive time ({slow / fast:.1f}x faster)")
        finally:
            stop_embedded_warehouse(state_dir)
            stop_embedded_postgres(state_dir)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

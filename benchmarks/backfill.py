"""Backfill of 1,000,000 rows by the embedded data plane vs. the raw limit of this machine.

Raw limit: ``COPY ... TO STDOUT`` from PostgreSQL, parsed by Arrow, bulk-loaded (PUT + COPY INTO) into the
same warehouse. Data plane: snapshot + documents with ``_meta`` + typed columns + checkpoint, the whole run of
the capture (connections, slot, tables included). Both run warm (the servers already started), taking turns
for a few rounds; the best of each is compared. Run: ``python benchmarks/backfill.py [rows]``.
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.csv as pacsv
import yaml

from sophia_dagster.dataplane.runtime import LocalDataPlane
from sophia_dagster.embedded.postgres import ensure_embedded_postgres, stop_embedded_postgres
from sophia_dagster.warehouse.bulk import load_arrow
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource, stop_embedded_warehouse

ROUNDS = 3
COLUMNS = "id bigint PRIMARY KEY, name text, amount numeric(12,2), created_at timestamptz, active boolean"


def bench_catalog(directory: Path) -> Path:
    """A one-table catalog: public.bench captured and materialized into BENCH.RAW.BENCH."""
    config = {
        "address": "embedded",
        "database": "sophia",
        "user": "postgres",
        "advanced": {"publicationName": "bench_pub", "slotName": "bench_slot"},
    }
    catalog = {
        "captures": {
            "bench/pg": {
                "endpoint": {"connector": {"image": "ghcr.io/estuary/source-postgres:v3", "config": config}},
                "bindings": [{"resource": {"namespace": "public", "stream": "bench"}, "target": "bench/pg/bench"}],
            }
        },
        "collections": {
            "bench/pg/bench": {"key": ["/id"], "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}}
        },
        "materializations": {
            "bench/warehouse": {
                "endpoint": {
                    "connector": {
                        "image": "ghcr.io/estuary/materialize-snowflake:v4",
                        "config": {"database": "BENCH", "schema": "RAW"},
                    }
                },
                "bindings": [{"resource": {"table": "bench"}, "source": "bench/pg/bench"}],
            }
        },
    }
    path = directory / "bench.flow.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return path


@contextmanager
def embedded_engines(prefix: str) -> Iterator[tuple[Path, str]]:
    """A throwaway state dir with its embedded PostgreSQL (DSN yielded) and warehouse, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        state_dir = Path(tmp) / "state"
        try:
            yield state_dir, ensure_embedded_postgres(state_dir)
        finally:
            stop_embedded_warehouse(state_dir)
            stop_embedded_postgres(state_dir)


def _raw_limit(dsn: str, state_dir: Path) -> float:
    import psycopg

    started = time.perf_counter()
    buffer = io.BytesIO()
    with psycopg.connect(dsn) as conn, conn.cursor().copy("COPY bench TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    table = pacsv.read_csv(buffer)
    with embedded_snowflake_resource(state_dir, "BENCH", "RAW").get_connection() as conn:
        cursor = conn.cursor()
        cursor.execute("CREATE DATABASE IF NOT EXISTS BENCH")
        cursor.execute("CREATE SCHEMA IF NOT EXISTS BENCH.RAW")
        cursor.execute("USE SCHEMA BENCH.RAW")
        cursor.execute("DROP TABLE IF EXISTS BENCH_RAW_LIMIT")
        load_arrow(cursor, table, "BENCH_RAW_LIMIT")
    return time.perf_counter() - started


def _data_plane(plane: LocalDataPlane, rows: int) -> float:
    """One backfill of every row by the capture's run, from a reset (a new snapshot, the table replaced)."""
    pipeline = plane.pipeline("bench/pg")
    try:
        pipeline.reset()
    finally:
        pipeline.close()
    started = time.perf_counter()
    report = plane.run("bench/pg")
    took = time.perf_counter() - started
    assert report.backfilled["bench/pg/bench"] == rows, report.backfilled
    return took


def main(rows: int = 1_000_000) -> None:
    import psycopg

    with embedded_engines("sophia-bench-") as (state_dir, dsn):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE bench ({COLUMNS})")
            conn.execute(
                "INSERT INTO bench SELECT g, 'name ' || g, (g %% 100000) / 100.0, "
                "'2025-01-01'::timestamptz + g * interval '1 second', g %% 2 = 0 FROM generate_series(1, %s) g",
                (rows,),
            )
        plane = LocalDataPlane(
            state_dir=str(state_dir),
            catalog_path=str(bench_catalog(state_dir.parent)),
            warehouse_database="SOPHIA",
            warehouse_schema="RAW",
        )
        _raw_limit(dsn, state_dir)
        raws, ours = [], []
        for round_ in range(ROUNDS):
            raws.append(_raw_limit(dsn, state_dir))
            ours.append(_data_plane(plane, rows))
            print(f"round {round_ + 1}: raw limit {raws[-1]:.2f} s, data plane {ours[-1]:.2f} s")
        raw, took = min(raws), min(ours)
        print(f"rows: {rows:,}")
        print(f"raw limit (COPY TO STDOUT + bulk load): {raw:.2f} s ({rows / raw:,.0f} rows/s)")
        print(f"data plane backfill:                   {took:.2f} s ({rows / took:,.0f} rows/s)")
        print(
            f"ratio data plane / raw limit: {took / raw:.2f}x best of {ROUNDS}; "
            f"median {statistics.median(ours) / statistics.median(raws):.2f}x; goal 1.3x"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

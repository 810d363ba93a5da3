"""Bulk write of 1,000,000 rows x 10 columns into the embedded warehouse with `load_arrow` (PUT + COPY INTO).

Baseline, measured in the same run on the same Arrow table: DuckDB's own bulk insert
(`CREATE TABLE ... AS SELECT * FROM arrow_table`) into a DuckDB file. The ratio is what the Snowflake
protocol, the Parquet staging and fakesnow add on top of the engine underneath. For context it also
times row-at-a-time `executemany` INSERTs of a small slice, the path `load_arrow` replaces.

Run: `.venv/bin/python benchmarks/warehouse_bulk_write.py [--rows N] [--repeat K]`
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from sophia_dagster.warehouse.bulk import load_arrow
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource, stop_embedded_warehouse

ROW_AT_A_TIME_ROWS = 2_000


def make_table(rows: int, seed: int = 7) -> pa.Table:
    """Ten columns of the kinds the platform lands: keys, amounts, scores, text, flags, times, dates."""
    rng = np.random.default_rng(seed)
    stages = np.array(["prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost"])
    start = np.datetime64("2025-01-01T00:00:00", "us")
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "company_id": pa.array(rng.integers(1, 20_000, rows)),
            "amount": pa.array(rng.uniform(100, 2_500_000, rows).round(2)),
            "score": pa.array(rng.standard_normal(rows)),
            "stage": pa.array(stages[rng.integers(0, len(stages), rows)]),
            "email": pa.array([f"contact{i}@example.com" for i in range(rows)]),
            "is_active": pa.array(rng.random(rows) < 0.9),
            "updated_at": pa.array(
                start + rng.integers(0, 300 * 86_400_000_000, rows).astype("timedelta64[us]"),
                type=pa.timestamp("us", tz="UTC"),
            ),
            "close_date": pa.array(
                (start + rng.integers(0, 500, rows).astype("timedelta64[D]")).astype("datetime64[D]")
            ),
            "probability": pa.array(rng.integers(0, 101, rows, dtype=np.int32)),
        }
    )


def timed(repeat: int, run: Callable[[int], None]) -> float:
    """Median wall seconds of `run(attempt)`."""
    seconds = []
    for attempt in range(repeat):
        started = time.perf_counter()
        run(attempt)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def duckdb_baseline(table: pa.Table, directory: Path, repeat: int) -> float:
    """DuckDB's bulk insert of the Arrow table into a database file."""
    with duckdb.connect(str(directory / "baseline.duckdb")) as conn:
        conn.register("arrow_table", table)

        def run(attempt: int) -> None:
            conn.execute(f"CREATE TABLE t{attempt} AS SELECT * FROM arrow_table")
            assert conn.execute(f"SELECT count(*) FROM t{attempt}").fetchone()[0] == table.num_rows

        return timed(repeat, run)


def warehouse_load(table: pa.Table, state_dir: Path, repeat: int) -> tuple[float, float]:
    """`load_arrow` into fresh tables of the embedded warehouse, and executemany of a small slice."""
    resource = embedded_snowflake_resource(state_dir, database="BENCH", schema="PUBLIC")
    with resource.get_connection() as conn:
        cursor = conn.cursor()

        def run(attempt: int) -> None:
            assert load_arrow(cursor, table, f"BENCH.PUBLIC.T{attempt}") == table.num_rows

        bulk = timed(repeat, run)
        [[count]] = cursor.execute("SELECT COUNT(*) FROM BENCH.PUBLIC.T0").fetchall()
        assert count == table.num_rows, count
        sample = table.slice(0, ROW_AT_A_TIME_ROWS)
        cursor.execute("CREATE TABLE BENCH.PUBLIC.ROWS_AT_A_TIME LIKE BENCH.PUBLIC.T0")
        placeholders = ", ".join(["%s"] * sample.num_columns)
        started = time.perf_counter()
        cursor.executemany(
            f"INSERT INTO BENCH.PUBLIC.ROWS_AT_A_TIME VALUES ({placeholders})",
            [tuple(row.values()) for row in sample.to_pylist()],
        )
        row_at_a_time = time.perf_counter() - started
    return bulk, row_at_a_time


def main() -> None:
    """Print rows/s for both paths and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    table = make_table(args.rows)
    print(
        f"{table.num_rows:,} rows x {table.num_columns} columns, {table.nbytes / 1e6:.0f} MB in Arrow; "
        f"median of {args.repeat} runs"
    )
    with tempfile.TemporaryDirectory(prefix="sophia-bench-") as tmp:
        directory = Path(tmp)
        try:
            baseline = duckdb_baseline(table, directory, args.repeat)
            bulk, row_at_a_time = warehouse_load(table, directory / "state", args.repeat)
        finally:
            stop_embedded_warehouse(directory / "state")
    rows = table.num_rows
    print(f"duckdb bulk insert (baseline)      {baseline:7.2f} s  {rows / baseline:12,.0f} rows/s")
    print(f"embedded warehouse load_arrow      {bulk:7.2f} s  {rows / bulk:12,.0f} rows/s")
    print(
        f"executemany INSERT ({ROW_AT_A_TIME_ROWS:,} rows)       {row_at_a_time:7.2f} s  "
        f"{ROW_AT_A_TIME_ROWS / row_at_a_time:12,.0f} rows/s"
    )
    print(
        f"ratio load_arrow / duckdb: {bulk / baseline:.2f}x the time (engine + protocol overhead); "
        f"load_arrow is {(rows / bulk) / (ROW_AT_A_TIME_ROWS / row_at_a_time):,.0f}x executemany"
    )


if __name__ == "__main__":
    main()

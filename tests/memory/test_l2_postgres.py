"""L2 PostgreSQL IO manager on the machine's PostgreSQL: round trips, partition overwrite, failures."""

from __future__ import annotations

import datetime as dt
import decimal

import dagster as dg
import pandas as pd
import psycopg
import pyarrow as pa
import pytest

from sophia_dagster.memory.errors import DurableWriteError
from sophia_dagster.memory.l2_postgres import DocumentStore, PostgresIOManager
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.memory.store import write_or_fail
from sophia_dagster.postgres_source import SourcePostgres
from tests.memory.conftest import SYSTEM_PG, asset_returning, collector, free_port

VALUES = {
    "frame": pd.DataFrame(
        {
            "n": [1, 2],
            "s": ["a", None],
            "t": pd.to_datetime(["2025-01-01 10:00", "2025-03-01 00:00"], utc=True),
            "amount": [decimal.Decimal("12.50"), None],
        }
    ),
    "arrow": pa.table(
        {
            "id": pa.array([1, 2], pa.int32()),
            "day": pa.array([dt.date(2025, 1, 1), None]),
            "blob": [b"\x00\x01", None],
        }
    ),
    "mapping": {"contact": 7, "summary": "renewal risk", "scores": [0.5, 1]},
    "items": [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "hello", "meta": {"k": None}}],
    "text": "a plain string ✓",
    "empty_items": [],
}


@pytest.fixture
def document_store(system_postgres: SourcePostgres, pg_schema: str) -> DocumentStore:
    return DocumentStore(postgres=system_postgres, schema_name=pg_schema)


def _rows(schema: str, asset: str) -> list[tuple]:
    with psycopg.connect(SYSTEM_PG) as conn:
        return conn.execute(
            f"SELECT partition_key, position, doc FROM {schema}.documents WHERE asset_key = %s ORDER BY 1, 2", (asset,)
        ).fetchall()


def test_round_trip_of_every_type(document_store: DocumentStore) -> None:
    sink: dict[str, object] = {}
    assets = [asset_returning(f"l2_{name}", value) for name, value in VALUES.items()]
    result = dg.materialize(
        [*assets, collector([f"l2_{name}" for name in VALUES], sink)],
        resources={"io": PostgresIOManager(store=document_store)},
    )
    assert result.success
    pd.testing.assert_frame_equal(sink["l2_frame"], VALUES["frame"])
    assert sink["l2_arrow"].equals(VALUES["arrow"])
    for name in ("mapping", "items", "text", "empty_items"):
        assert sink[f"l2_{name}"] == VALUES[name]


def test_documents_are_real_rows(document_store: DocumentStore, pg_schema: str) -> None:
    document_store.write(OutputRef(("l2_docs",)), [{"a": 1}, {"b": [2]}], "v1")
    assert _rows(pg_schema, "l2_docs") == [("", 0, {"a": 1}), ("", 1, {"b": [2]})]


def test_partitions_are_overwritten_not_duplicated(document_store: DocumentStore, pg_schema: str) -> None:
    partitions = dg.DailyPartitionsDefinition(start_date="2025-01-01")
    sizes = {"2025-01-01": [3, 2], "2025-01-02": [4]}

    def build(size_by_day: dict[str, int]) -> dg.AssetsDefinition:
        @dg.asset(name="l2_daily", partitions_def=partitions, io_manager_key="io")
        def daily(context) -> list[dict[str, object]]:
            return [{"day": context.partition_key, "i": i} for i in range(size_by_day[context.partition_key])]

        return daily

    resources = {"io": PostgresIOManager(store=document_store)}
    for day, runs in sizes.items():
        for size in runs:
            assert dg.materialize([build({day: size})], partition_key=day, resources=resources).success
    rows = _rows(pg_schema, "l2_daily")
    assert [(p, n) for p, n, _ in rows] == [
        ("2025-01-01", 0),
        ("2025-01-01", 1),
        *[("2025-01-02", i) for i in range(4)],
    ]
    assert document_store.read(OutputRef(("l2_daily",), "2025-01-01")).value == [
        {"day": "2025-01-01", "i": 0},
        {"day": "2025-01-01", "i": 1},
    ]


def test_unreachable_database_fails_the_step_with_a_clear_error(pg_schema: str) -> None:
    canary = "canary-pg-secret-42"
    dead = SourcePostgres(dsn=f"postgresql://postgres:{canary}@127.0.0.1:{free_port()}/test")
    manager = PostgresIOManager(store=DocumentStore(postgres=dead, schema_name=pg_schema))
    result = dg.materialize([asset_returning("l2_lost", {"v": 1})], resources={"io": manager}, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    message = failure.cause.message if failure.cause else failure.message
    assert "L2 postgres could not store asset l2_lost" in message
    assert "cannot be reached" in message
    assert canary not in str(failure)


def test_value_that_is_not_json_is_refused_with_the_asset_named(document_store: DocumentStore) -> None:
    with pytest.raises(DurableWriteError, match="L2 postgres could not store asset l2_bad: .*Out of range float"):
        write_or_fail(document_store, OutputRef(("l2_bad",)), [{"x": float("inf")}], "v1")

"""L4 warehouse IO manager on the embedded warehouse: round trips, empty frames, partition overwrites."""

from __future__ import annotations

import datetime as dt
import decimal

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from sophia_dagster.memory.errors import DurableWriteError
from sophia_dagster.memory.l4_warehouse import WarehouseIOManager, WarehouseStore, table_name
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.memory.store import write_or_fail
from tests.memory.conftest import asset_returning, collector

FRAME = pd.DataFrame(
    {
        "Deal Id": [1, 2, 3],
        "stage": ["proposal", None, "closed_won"],
        "amount": [decimal.Decimal("1200.50"), None, decimal.Decimal("7.25")],
        "closed_at": pd.to_datetime(["2025-01-01 10:00", None, "2025-02-03 04:05"], utc=True),
    }
)
ARROW = pa.table(
    {
        "id": pa.array([1, 2], pa.int32()),
        "score": pa.array([0.5, None], pa.float64()),
        "day": pa.array([dt.date(2025, 1, 1), None]),
        "ok": [True, None],
    }
)


def _count(store: WarehouseStore, target: str, where: str = "") -> int:
    with store.snowflake.get_connection() as conn:
        cursor = conn.cursor()
        cursor.execute(f"SELECT count(*) FROM {target} {where}")
        return cursor.fetchone()[0]


def test_round_trip_of_tables_with_nulls_and_original_column_names(warehouse_store: WarehouseStore) -> None:
    sink: dict[str, object] = {}
    result = dg.materialize(
        [
            asset_returning("l4_frame", FRAME),
            asset_returning("l4_arrow", ARROW),
            collector(["l4_frame", "l4_arrow"], sink),
        ],
        resources={"io": WarehouseIOManager(store=warehouse_store)},
    )
    assert result.success
    pd.testing.assert_frame_equal(sink["l4_frame"], FRAME)
    assert sink["l4_arrow"].equals(ARROW)
    metadata = result.asset_materializations_for_node("l4_frame")[0].metadata
    assert metadata["memory/rows"].value == 3
    assert metadata["memory/table"].value == f"{warehouse_store.schema_name}.L4_FRAME"


def test_empty_dataframes_create_the_table_and_round_trip(warehouse_store: WarehouseStore) -> None:
    empty = pd.DataFrame({"name": pd.Series([], dtype=object), "n": pd.Series([], dtype="int64")})
    assert pa.types.is_null(pa.Table.from_pandas(empty).schema.field("name").type)
    ref = OutputRef(("l4_empty",))
    write_or_fail(warehouse_store, ref, empty, "v1")
    pd.testing.assert_frame_equal(warehouse_store.read(ref).value, empty)
    assert _count(warehouse_store, table_name(ref, warehouse_store.schema_name)) == 0


def test_partitions_are_overwritten_not_duplicated(warehouse_store: WarehouseStore) -> None:
    partitions = dg.StaticPartitionsDefinition(["a", "b"])
    sizes: dict[str, int] = {}

    @dg.asset(partitions_def=partitions, io_manager_key="io")
    def l4_parts(context) -> pa.Table:
        n = sizes[context.partition_key]
        return pa.table({"part": [context.partition_key] * n, "i": list(range(n))})

    resources = {"io": WarehouseIOManager(store=warehouse_store)}
    for key, n in (("a", 5), ("b", 2), ("a", 3), ("b", 0)):
        sizes[key] = n
        assert dg.materialize([l4_parts], partition_key=key, resources=resources).success
    target = table_name(OutputRef(("l4_parts",)), warehouse_store.schema_name)
    assert _count(warehouse_store, target) == 3
    assert warehouse_store.read(OutputRef(("l4_parts",), "a")).value.column("i").to_pylist() == [0, 1, 2]
    assert warehouse_store.read(OutputRef(("l4_parts",), "b")).value.num_rows == 0


def test_a_changed_schema_replaces_an_unpartitioned_table(warehouse_store: WarehouseStore) -> None:
    ref = OutputRef(("l4_reshaped",))
    write_or_fail(warehouse_store, ref, pa.table({"a": [1, 2]}), "v1")
    write_or_fail(warehouse_store, ref, pa.table({"b": ["x"]}), "v2")
    stored = warehouse_store.read(ref)
    assert (stored.value.to_pylist(), stored.version) == ([{"b": "x"}], "v2")


def test_a_changed_schema_is_refused_for_a_partitioned_table(warehouse_store: WarehouseStore) -> None:
    write_or_fail(warehouse_store, OutputRef(("l4_strict",), "p1"), pa.table({"a": [1]}), "v1")
    with pytest.raises(DurableWriteError, match=r"asset l4_strict partition p2: columns \['b'\] differ"):
        write_or_fail(warehouse_store, OutputRef(("l4_strict",), "p2"), pa.table({"b": [1]}), "v2")


def test_non_tables_are_refused_with_the_asset_named(warehouse_store: WarehouseStore) -> None:
    with pytest.raises(DurableWriteError, match="L4 warehouse could not store asset l4_dict: TypeError: .*got dict"):
        write_or_fail(warehouse_store, OutputRef(("l4_dict",)), {"a": 1}, "v1")


def test_table_names_follow_the_asset_key() -> None:
    assert table_name(OutputRef(("snowflake", "sophia", "raw", "deals")), "X") == "SOPHIA.RAW.DEALS"
    assert table_name(OutputRef(("memory", "hot-table")), "SOPHIA_MEMORY") == "SOPHIA_MEMORY.MEMORY_HOT_TABLE"

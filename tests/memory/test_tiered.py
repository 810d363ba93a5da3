"""The tiered IO manager: write-through, read from the fastest tier, promotion, and tiers going down."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from sophia_dagster.memory.errors import MissingValueError
from sophia_dagster.memory.l1_redis import RedisStore
from sophia_dagster.memory.l2_postgres import DocumentStore
from sophia_dagster.memory.l4_warehouse import WarehouseStore
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.memory.tiered import TieredIOManager
from sophia_dagster.postgres_source import SourcePostgres
from tests.memory.conftest import RedisServer, asset_returning, collector, free_port, warnings_of

HOT = pa.table({"owner": ["ava", "tom"], "amount": [10.5, 20.0]})


def test_write_through_then_read_from_cache_and_promote(
    make_redis_store: Callable[..., RedisStore], warehouse_store: WarehouseStore, instance: dg.DagsterInstance
) -> None:
    cache = make_redis_store()
    manager = TieredIOManager(cache=cache, durable=warehouse_store)
    hot = asset_returning("tiered_hot", HOT)
    result = dg.materialize([hot], resources={"io": manager}, instance=instance)
    assert result.success
    ref = OutputRef(("tiered_hot",))
    version = result.get_asset_materialization_events()[0].materialization.metadata["memory/version"].value
    assert cache.read(ref).version == warehouse_store.read(ref).version == version
    assert cache.read(ref).value.equals(HOT)

    cache.delete(ref)
    sink: dict[str, object] = {}
    collect = collector(["tiered_hot"], sink)
    assert dg.materialize([hot, collect], selection=[collect.key], resources={"io": manager}, instance=instance).success
    assert sink["tiered_hot"].equals(HOT)
    assert cache.read(ref).value.equals(HOT)  # promoted on read
    second = dg.materialize([hot, collect], selection=[collect.key], resources={"io": manager}, instance=instance)
    assert "asset tiered_hot read from L1 redis" in _debug_messages(instance, second.run_id)
    assert "asset tiered_hot read from L1 redis" not in _debug_messages(instance, result.run_id)


def _debug_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [record.user_message for record in instance.all_logs(run_id)]


def test_redis_killed_mid_run_the_run_succeeds_from_the_durable_tier(
    redis_server: RedisServer, warehouse_store: WarehouseStore, instance: dg.DagsterInstance
) -> None:
    manager = TieredIOManager(cache=RedisStore(url=redis_server.url, prefix="killed"), durable=warehouse_store)
    before = pd.DataFrame({"n": [1, 2, 3]})
    after = pd.DataFrame({"n": [4, 5]})

    @dg.asset(io_manager_key="io")
    def tiered_before() -> pd.DataFrame:
        return before

    @dg.asset(io_manager_key="io", deps=[tiered_before])
    def tiered_after() -> pd.DataFrame:
        redis_server.kill()
        return after

    sink: dict[str, object] = {}
    collect = collector(["tiered_before", "tiered_after"], sink, deps=[tiered_after])
    result = dg.materialize([tiered_before, tiered_after, collect], resources={"io": manager}, instance=instance)
    assert result.success
    pd.testing.assert_frame_equal(sink["tiered_before"], before)
    pd.testing.assert_frame_equal(sink["tiered_after"], after)
    warnings = warnings_of(instance, result.run_id)
    assert any(
        "asset tiered_after is stored in L4 warehouse only" in w and "L1 redis is unreachable" in w for w in warnings
    )
    assert any("memory cache degraded, reading asset tiered_before from L4 warehouse" in w for w in warnings)
    metadata = result.asset_materializations_for_node("tiered_after")[0].metadata
    assert metadata["memory/cached_in"].value == "none"
    assert metadata["memory/tier"].value == "L4 warehouse"


def test_a_cache_that_missed_a_write_never_serves_the_stale_value(
    redis_server: RedisServer, system_postgres: SourcePostgres, pg_schema: str, instance: dg.DagsterInstance
) -> None:
    durable = DocumentStore(postgres=system_postgres, schema_name=pg_schema)
    live = TieredIOManager(cache=RedisStore(url=redis_server.url, prefix="stale"), durable=durable)
    down = TieredIOManager(cache=RedisStore(url=f"redis://127.0.0.1:{free_port()}/0", prefix="stale"), durable=durable)
    assert dg.materialize([asset_returning("tiered_doc", {"v": 1})], resources={"io": live}, instance=instance).success
    assert dg.materialize([asset_returning("tiered_doc", {"v": 2})], resources={"io": down}, instance=instance).success
    assert RedisStore(url=redis_server.url, prefix="stale").read(OutputRef(("tiered_doc",))).value == {"v": 1}

    sink: dict[str, object] = {}
    doc, collect = asset_returning("tiered_doc", None), collector(["tiered_doc"], sink)
    assert dg.materialize([doc, collect], selection=[collect.key], resources={"io": live}, instance=instance).success
    assert sink["tiered_doc"] == {"v": 2}
    assert RedisStore(url=redis_server.url, prefix="stale").read(OutputRef(("tiered_doc",))).value == {"v": 2}


def test_durable_tier_failing_fails_the_step_and_leaves_the_cache_alone(
    make_redis_store: Callable[..., RedisStore], pg_schema: str, instance: dg.DagsterInstance
) -> None:
    cache = make_redis_store()
    dead = DocumentStore(
        postgres=SourcePostgres(dsn=f"postgresql://postgres@127.0.0.1:{free_port()}/x"), schema_name=pg_schema
    )
    manager = TieredIOManager(cache=cache, durable=dead)
    result = dg.materialize(
        [asset_returning("tiered_lost", {"v": 1})], resources={"io": manager}, instance=instance, raise_on_error=False
    )
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    message = error.cause.message if error.cause else error.message
    assert "DurableWriteError: L2 postgres could not store asset tiered_lost" in message
    with pytest.raises(MissingValueError):
        cache.read(OutputRef(("tiered_lost",)))

"""L1 holding garbage or a value changed in place, and concurrent writers: a miss and a warning, never an error."""

from __future__ import annotations

import threading
from collections.abc import Callable

import dagster as dg
import pyarrow as pa
import redis

from sophia_dagster.memory.errors import MissingValueError
from sophia_dagster.memory.l1_redis import RedisStore
from sophia_dagster.memory.l4_warehouse import WarehouseStore
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.memory.tiered import TieredIOManager
from tests.memory.conftest import asset_returning, collector, warnings_of

HOT = pa.table({"owner": ["ava", "tom"], "amount": [10.5, 20.0]})


def client_of(store: RedisStore) -> redis.Redis:
    return redis.Redis.from_url(store.url)


def chunk_key(store: RedisStore, ref: OutputRef) -> str:
    return f"{store.key(ref)}:{store.read(ref).version}:0"


def test_a_garbage_chunk_is_a_miss_that_the_durable_tier_repairs(
    make_redis_store: Callable[..., RedisStore], warehouse_store: WarehouseStore, instance: dg.DagsterInstance
) -> None:
    cache = make_redis_store()
    manager = TieredIOManager(cache=cache, durable=warehouse_store)
    hot, ref = asset_returning("l1_garbled", HOT), OutputRef(("l1_garbled",))
    assert dg.materialize([hot], resources={"io": manager}, instance=instance).success
    client_of(cache).set(chunk_key(cache, ref), b"\x00garbage, not Arrow IPC")

    sink: dict[str, object] = {}
    collect = collector(["l1_garbled"], sink)
    result = dg.materialize([hot, collect], selection=[collect.key], resources={"io": manager}, instance=instance)
    assert result.success
    assert sink["l1_garbled"].equals(HOT)
    assert cache.read(ref).value.equals(HOT)  # rewritten from the durable tier
    assert any("corrupt value for asset l1_garbled" in w for w in warnings_of(instance, result.run_id))


def test_a_value_changed_in_place_is_never_served(make_redis_store: Callable[..., RedisStore]) -> None:
    cache, ref = make_redis_store(), OutputRef(("l1_changed",))
    cache.write(ref, {"amount": 100}, "v" * 32)
    client_of(cache).set(chunk_key(cache, ref), b'{"amount":999}')
    try:
        value = cache.read(ref).value
    except MissingValueError:
        value = None
    assert value is None


def test_a_garbage_manifest_is_a_miss_and_the_next_write_succeeds(
    make_redis_store: Callable[..., RedisStore], warehouse_store: WarehouseStore, instance: dg.DagsterInstance
) -> None:
    cache = make_redis_store()
    ref = OutputRef(("l1_bad_manifest",))
    client_of(cache).set(cache.key(ref), b"{not json")
    manager = TieredIOManager(cache=cache, durable=warehouse_store)
    result = dg.materialize([asset_returning("l1_bad_manifest", HOT)], resources={"io": manager}, instance=instance)
    assert result.success
    assert result.asset_materializations_for_node("l1_bad_manifest")[0].metadata["memory/cached_in"].value == (
        "L1 redis"
    )
    assert cache.read(ref).value.equals(HOT)


def test_a_cache_write_failing_after_the_durable_write_never_fails_the_step(
    make_redis_store: Callable[..., RedisStore], warehouse_store: WarehouseStore, instance: dg.DagsterInstance
) -> None:
    cache = make_redis_store()
    ref = OutputRef(("l1_wrongtype",))
    client_of(cache).hset(cache.key(ref), "not", "a string")  # WRONGTYPE for every GET/SET of the manifest
    manager = TieredIOManager(cache=cache, durable=warehouse_store)
    result = dg.materialize([asset_returning("l1_wrongtype", HOT)], resources={"io": manager}, instance=instance)
    assert result.success
    assert warehouse_store.read(ref).value.equals(HOT)
    assert any("stored in L4 warehouse only" in w for w in warnings_of(instance, result.run_id))


def test_concurrent_writers_leave_only_the_current_chunks(make_redis_store: Callable[..., RedisStore]) -> None:
    cache, ref = make_redis_store(chunk_bytes=16), OutputRef(("l1_race",))
    start = threading.Barrier(8)

    def write(worker: int) -> None:
        start.wait()
        for round_ in range(25):
            cache.write(ref, {"worker": worker, "round": round_, "pad": "x" * 64}, f"{worker:02d}{round_:02d}" * 8)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client = client_of(cache)
    current = cache.read(ref)
    keys = {key.decode() for key in client.scan_iter(f"{cache.key(ref)}:*")}
    chunks = client.mget(sorted(keys))
    assert keys == {f"{cache.key(ref)}:{current.version}:{index}" for index in range(len(chunks))}

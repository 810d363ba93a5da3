"""L1 Redis IO manager against a real Redis: round trips, partitions, TTL expiry, chunking, atomicity."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import redis

from sophia_dagster.memory.errors import MissingValueError, TierUnavailableError
from sophia_dagster.memory.l1_redis import RedisIOManager, RedisStore
from sophia_dagster.memory.refs import OutputRef
from tests.memory.conftest import RedisServer, asset_returning, collector, free_port

VALUES = {
    "frame": pd.DataFrame({"n": [1, 2, 3], "s": ["a", None, "c"], "t": pd.to_datetime(["2025-01-01"] * 3, utc=True)}),
    "arrow": pa.table({"id": pa.array([1, 2], pa.int32()), "blob": [b"\x00\xff", None]}),
    "mapping": {"deal": 7, "tags": ["a", "b"], "nested": {"ok": True, "none": None}},
    "items": [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "hello"}],
    "text": "a plain string ✓",
}


def _assert_same(loaded: object, expected: object) -> None:
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(loaded, expected)
    elif isinstance(expected, pa.Table):
        assert loaded.equals(expected)
    else:
        assert loaded == expected


def test_round_trip_of_every_type(make_redis_store: Callable[..., RedisStore]) -> None:
    sink: dict[str, object] = {}
    assets = [asset_returning(f"l1_{name}", value) for name, value in VALUES.items()]
    result = dg.materialize(
        [*assets, collector([f"l1_{name}" for name in VALUES], sink)],
        resources={"io": RedisIOManager(store=make_redis_store())},
    )
    assert result.success
    for name, value in VALUES.items():
        _assert_same(sink[f"l1_{name}"], value)


def test_keys_are_namespaced_by_location_asset_and_partition(
    make_redis_store: Callable[..., RedisStore], redis_url: str, key_prefix: str
) -> None:
    store = make_redis_store(code_location="loc_a")
    other = make_redis_store(code_location="loc_b")
    ref = OutputRef(("team", "report"), "2025-01-02")
    store.write(ref, {"from": "a"}, "v1")
    other.write(ref, {"from": "b"}, "v2")
    assert store.key(ref) == f"{key_prefix}:loc_a:team/report:2025-01-02"
    assert redis.Redis.from_url(redis_url).exists(store.key(ref)) == 1
    assert store.read(ref).value == {"from": "a"}
    assert other.read(ref).value == {"from": "b"}


def test_partitions_are_stored_separately_and_loaded_together(make_redis_store: Callable[..., RedisStore]) -> None:
    partitions = dg.StaticPartitionsDefinition(["east", "west"])

    @dg.asset(partitions_def=partitions, io_manager_key="io")
    def regional(context) -> dict[str, str]:
        return {"region": context.partition_key}

    sink: dict[str, object] = {}
    resources = {"io": RedisIOManager(store=make_redis_store())}
    instance = dg.DagsterInstance.ephemeral()
    for key in ("east", "west"):
        assert dg.materialize([regional], partition_key=key, resources=resources, instance=instance).success
    collect = collector(["regional"], sink)
    assert dg.materialize([regional, collect], selection=[collect.key], resources=resources, instance=instance).success
    assert sink["regional"] == {"east": {"region": "east"}, "west": {"region": "west"}}


def test_ttl_from_asset_metadata_expires_the_value(make_redis_store: Callable[..., RedisStore], redis_url: str) -> None:
    store = make_redis_store(default_ttl_seconds=3600)
    short = asset_returning("l1_short_lived", {"v": 1}, metadata={"memory/ttl_seconds": 1})
    result = dg.materialize([short], resources={"io": RedisIOManager(store=store)})
    assert result.success
    ref = OutputRef(("l1_short_lived",))
    ttl_ms = redis.Redis.from_url(redis_url).pttl(store.key(ref))
    assert 0 < ttl_ms <= 1000
    assert store.read(ref).value == {"v": 1}
    time.sleep(1.2)
    with pytest.raises(MissingValueError, match="holds no value for asset l1_short_lived"):
        store.read(ref)
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["memory/ttl_seconds"].value == 1


def test_a_50_mb_table_is_chunked_and_reassembled(make_redis_store: Callable[..., RedisStore], redis_url: str) -> None:
    rows = 1_700_000
    table = pa.table({f"c{i}": np.arange(rows, dtype=np.int64) * (i + 1) for i in range(4)})
    assert table.nbytes >= 50 * 1024 * 1024
    store = make_redis_store(chunk_bytes=4 * 1024 * 1024)
    sink: dict[str, object] = {}
    result = dg.materialize(
        [asset_returning("l1_big", table), collector(["l1_big"], sink)], resources={"io": RedisIOManager(store=store)}
    )
    assert result.success
    assert sink["l1_big"].equals(table)
    manifest = json.loads(redis.Redis.from_url(redis_url).get(store.key(OutputRef(("l1_big",)))))
    assert manifest["chunks"] == -(-manifest["size"] // store.chunk_bytes) >= 13


def test_a_half_written_value_is_never_read(make_redis_store: Callable[..., RedisStore], redis_url: str) -> None:
    store = make_redis_store(chunk_bytes=16)
    ref = OutputRef(("l1_atomic",))
    store.write(ref, {"text": "the committed value, long enough for chunks"}, "v1")
    client = redis.Redis.from_url(redis_url)
    client.set(f"{store.key(ref)}:v2:0", b'{"text": "a newer value wh')  # a writer that died after one chunk
    assert store.read(ref).value == {"text": "the committed value, long enough for chunks"}
    manifest = json.loads(client.get(store.key(ref)))
    client.delete(f"{store.key(ref)}:{manifest['version']}:1")  # a chunk evicted under the manifest
    with pytest.raises(MissingValueError, match="holds no value for asset l1_atomic"):
        store.read(ref)


def test_rewriting_removes_the_old_chunks(make_redis_store: Callable[..., RedisStore], redis_url: str) -> None:
    store = make_redis_store(chunk_bytes=8)
    ref = OutputRef(("l1_rewrite",))
    store.write(ref, "x" * 100, "v1")
    store.write(ref, "short", "v2")
    keys = {key.decode() for key in redis.Redis.from_url(redis_url).scan_iter(f"{store.key(ref)}*")}
    assert keys == {store.key(ref), f"{store.key(ref)}:v2:0"}


def test_unreachable_redis_is_a_clear_error_without_the_password() -> None:
    store = RedisStore(url=f"redis://:canary-pass-123@127.0.0.1:{free_port()}/0")
    with pytest.raises(TierUnavailableError, match="L1 redis is unreachable while writing asset a") as caught:
        store.write(OutputRef(("a",)), {"v": 1}, "v1")
    assert "canary-pass-123" not in str(caught.value)


def test_a_full_redis_is_an_unavailable_cache_not_a_crash(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).config_set("maxmemory", "1")  # noeviction: writes are refused
    store = RedisStore(url=redis_server.url)
    with pytest.raises(TierUnavailableError, match="L1 redis is unreachable while writing asset full") as caught:
        store.write(OutputRef(("full",)), {"v": 1}, "v1")
    assert isinstance(caught.value.__cause__, redis.exceptions.OutOfMemoryError)

"""Fixtures for the memory tiers: unique Redis key prefixes, throwaway schemas, a killable redis-server."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import redis

from sophia_dagster.memory.l1_redis import RedisStore
from sophia_dagster.memory.l4_warehouse import WarehouseStore
from sophia_dagster.postgres_source import SourcePostgres
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource

SYSTEM_PG = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RedisServer:
    """A redis-server subprocess this test owns."""

    process: subprocess.Popen
    url: str

    def kill(self) -> None:
        """Stop it abruptly, as a crash would."""
        self.process.kill()
        self.process.wait(10)


def start_redis_server() -> RedisServer:
    """Start a throwaway redis-server (no persistence) on a free port and wait until it answers."""
    port = free_port()
    process = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url).ping()
            return RedisServer(process, url)
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server a test may kill; stopped afterwards either way."""
    server = start_redis_server()
    yield server
    if server.process.poll() is None:
        server.kill()


@pytest.fixture(scope="session")
def key_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix unique to this test session; its keys are deleted at the end."""
    prefix = f"test-memory-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def make_redis_store(redis_url: str, key_prefix: str) -> Callable[..., RedisStore]:
    """RedisStore factory on the session's Redis, under the session prefix."""

    def make(**overrides: object) -> RedisStore:
        return RedisStore(**{"url": redis_url, "prefix": key_prefix, **overrides})

    return make


@pytest.fixture(scope="session")
def pg_schema() -> str:
    """A throwaway schema name, dropped from both PostgreSQL servers afterwards by the fixtures using it."""
    return f"memory_test_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def system_postgres(pg_schema: str) -> Iterator[SourcePostgres]:
    """The machine's PostgreSQL (db `test`), for tiers that need no pgvector; the schema is dropped afterwards."""
    yield SourcePostgres(dsn=SYSTEM_PG)
    with psycopg.connect(SYSTEM_PG, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {pg_schema} CASCADE")


@pytest.fixture(scope="session")
def embedded_postgres(embedded_state_dir: Path, pg_schema: str) -> Iterator[SourcePostgres]:
    """The embedded PostgreSQL 18 (with pgvector), seeded with the demo schema."""
    postgres = SourcePostgres(state_dir=str(embedded_state_dir))
    yield postgres
    with psycopg.connect(postgres.get_dsn(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {pg_schema} CASCADE")


@pytest.fixture(scope="session")
def warehouse_store(embedded_state_dir: Path) -> WarehouseStore:
    """L4 on the embedded warehouse, in a schema of its own."""
    return WarehouseStore(
        snowflake=embedded_snowflake_resource(embedded_state_dir), schema_name=f"MEM_{uuid.uuid4().hex[:8].upper()}"
    )


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """One Dagster instance shared by the runs of a test (so later runs see earlier materializations)."""
    with dg.DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


def asset_returning(name: str, value: object, io_manager_key: str = "io", **kwargs: object) -> dg.AssetsDefinition:
    """An asset called `name` that returns `value` through `io_manager_key`."""

    @dg.asset(name=name, io_manager_key=io_manager_key, **kwargs)
    def _asset() -> object:
        return value

    return _asset


def collector(names: list[str], sink: dict[str, object], **kwargs: object) -> dg.AssetsDefinition:
    """An asset that loads the named upstream assets through their IO managers into `sink`."""

    @dg.asset(ins={name: dg.AssetIn(name) for name in names}, **kwargs)
    def collect(**inputs: object) -> None:
        sink.update(inputs)

    return collect


def warnings_of(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The WARNING messages a run logged."""
    return [record.user_message for record in instance.all_logs(run_id) if record.level == logging.WARNING]

"""AsyncUnifiedMemoryService: many calls at once on real Redis and PostgreSQL, and what it closes on exit."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import redis

from sophia_dagster.memory.async_service import AsyncUnifiedMemoryService
from sophia_dagster.memory.conversations import ConversationStore
from sophia_dagster.memory.l1_redis import RedisStore
from sophia_dagster.memory.l3_pgvector import PgVectorKnowledgeStore
from sophia_dagster.memory.l5_cortex import CortexResource
from sophia_dagster.memory.service import UnifiedMemoryService
from sophia_dagster.postgres_source import SourcePostgres
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource
from tests.memory.conftest import RedisServer, free_port

CALLS = 40
WORKERS = 8


@pytest.fixture
def make_service(
    system_postgres: SourcePostgres,
    embedded_postgres: SourcePostgres,
    pg_schema: str,
    embedded_state_dir: Path,
    make_redis_store: Callable[..., RedisStore],
) -> Callable[..., UnifiedMemoryService]:
    """Conversations in the machine's PostgreSQL, knowledge in the embedded one (pgvector), cache in Redis."""

    def make(cache: RedisStore | None = None) -> UnifiedMemoryService:
        warehouse = embedded_snowflake_resource(embedded_state_dir)
        return UnifiedMemoryService(
            knowledge=PgVectorKnowledgeStore(postgres=embedded_postgres, schema_name=pg_schema),
            conversations=ConversationStore(postgres=system_postgres, schema_name=pg_schema),
            warehouse=warehouse,
            cortex=CortexResource(snowflake=warehouse, available=False),
            cache=cache or make_redis_store(),
        )

    return make


def _waiting_on_lock(dsn: str, schema: str) -> int:
    """How many backends wait for a lock on the conversation table right now."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE NOT l.granted AND n.nspname = %s AND c.relname = 'conversation_messages'",
            (schema,),
        ).fetchone()[0]


async def _wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def test_calls_run_at_once_up_to_the_pool_size(
    make_service: Callable[..., UnifiedMemoryService], system_postgres: SourcePostgres, pg_schema: str
) -> None:
    """With the table locked by another session, WORKERS inserts wait inside PostgreSQL together: they overlap."""
    service = make_service()
    user = f"async-{uuid.uuid4().hex[:8]}"
    dsn = system_postgres.get_dsn()
    service.conversations.recent(user, 1)  # creates the schema and table before the lock is taken

    async def scenario() -> list[int]:
        async with AsyncUnifiedMemoryService(service, max_workers=WORKERS) as memory:
            with psycopg.connect(dsn) as locker:
                locker.execute(f"LOCK TABLE {pg_schema}.conversation_messages IN EXCLUSIVE MODE")
                writes = [
                    asyncio.ensure_future(memory.add_conversation_memory(user, f"message {n}")) for n in range(CALLS)
                ]
                await _wait_for(lambda: _waiting_on_lock(dsn, pg_schema) == WORKERS)
                await asyncio.sleep(0.3)
                assert _waiting_on_lock(dsn, pg_schema) == WORKERS  # never more than the pool
                assert not any(write.done() for write in writes)
            results = await asyncio.gather(*writes)
            context = await memory.get_conversation_context(user, limit=CALLS)
        assert all(not r.degraded and r.tier == "L2 postgres" for r in results)
        assert sorted(m["content"] for m in context.value) == sorted(f"message {n}" for n in range(CALLS))
        return [r.value for r in results]

    ids = asyncio.run(scenario())
    assert len(set(ids)) == CALLS


def test_concurrent_mixed_calls_keep_each_users_context(make_service: Callable[..., UnifiedMemoryService]) -> None:
    """Writes and cached reads of 10 users interleaved: each user's context holds exactly that user's messages."""
    service = make_service()
    users = [f"mix-{uuid.uuid4().hex[:6]}-{n}" for n in range(10)]

    async def scenario() -> None:
        async with AsyncUnifiedMemoryService(service, max_workers=WORKERS) as memory:
            await asyncio.gather(*(memory.add_conversation_memory(u, f"{u} says {i}") for u in users for i in range(3)))
            contexts = await asyncio.gather(*(memory.get_conversation_context(u) for u in users))
            cached = await asyncio.gather(*(memory.get_conversation_context(u, limit=2) for u in users))
            added = await asyncio.gather(
                *(
                    memory.add_knowledge(f"renewal playbook number {n}", {"n": n}, doc_id=f"{users[0]}-{n}")
                    for n in range(5)
                )
            )
            found = await memory.search_knowledge("renewal playbook number 3", limit=1, filters={"n": 3})
        for user, context, recent in zip(users, contexts, cached, strict=True):
            assert sorted(m["content"] for m in context.value) == [f"{user} says {i}" for i in range(3)]
            assert recent.tier == "L1 redis" and len(recent.value) == 2
        assert [a.value for a in added] == [f"{users[0]}-{n}" for n in range(5)]
        assert [hit.id for hit in found.value] == [f"{users[0]}-3"]

    asyncio.run(scenario())


def test_exit_closes_threads_and_redis_connections(
    make_service: Callable[..., UnifiedMemoryService], redis_server: RedisServer
) -> None:
    """On a redis-server of its own: connections open while calls run, none are left after `async with`."""
    service = make_service(cache=RedisStore(url=redis_server.url, prefix=f"async-{uuid.uuid4().hex[:8]}"))
    admin = redis.Redis.from_url(redis_server.url)

    async def scenario() -> AsyncUnifiedMemoryService:
        async with AsyncUnifiedMemoryService(service, max_workers=WORKERS) as memory:
            await asyncio.gather(*(memory.get_conversation_context(f"user-{n}") for n in range(20)))
            assert len(admin.client_list()) > 1
        return memory

    memory = asyncio.run(scenario())
    assert [client["cmd"] for client in admin.client_list()] == ["client|list"]  # only this test's own connection
    with pytest.raises(RuntimeError, match="inside `async with`"):
        asyncio.run(memory.get_conversation_context("late"))
    admin.close()


def test_degraded_mode_is_the_sync_services(make_service: Callable[..., UnifiedMemoryService]) -> None:
    """A cache that is down: the async call returns what the sync one returns, degraded and from PostgreSQL."""
    service = make_service(cache=RedisStore(url=f"redis://127.0.0.1:{free_port()}/0"))

    async def scenario() -> None:
        async with AsyncUnifiedMemoryService(service) as memory:
            written = await memory.add_conversation_memory("async-degraded", "kept")
            context = await memory.get_conversation_context("async-degraded")
        assert written.degraded and written.value is not None
        assert context.degraded and context.tier == "L2 postgres" and context.value[-1]["content"] == "kept"

    asyncio.run(scenario())

"""UnifiedMemoryService while a part is down or comes back: degrade, never raise, never store twice or serve stale."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from sophia_dagster.embedded.postgres import stop_embedded_postgres
from sophia_dagster.memory.conversations import ConversationStore
from sophia_dagster.memory.errors import TierUnavailableError
from sophia_dagster.memory.l1_redis import RedisStore
from sophia_dagster.memory.l3_pgvector import PgVectorKnowledgeStore
from sophia_dagster.memory.l5_cortex import CortexResource
from sophia_dagster.memory.service import UnifiedMemoryService
from sophia_dagster.postgres_source import SourcePostgres
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource
from tests.memory.conftest import RedisServer, free_port


def service_on(postgres: SourcePostgres, schema: str, state_dir: Path, **kwargs: object) -> UnifiedMemoryService:
    warehouse = embedded_snowflake_resource(state_dir)
    return UnifiedMemoryService(
        knowledge=PgVectorKnowledgeStore(postgres=postgres, schema_name=schema),
        conversations=ConversationStore(postgres=postgres, schema_name=schema),
        warehouse=warehouse,
        cortex=CortexResource(snowflake=warehouse, available=False),
        **kwargs,
    )


def test_a_warehouse_that_cannot_start_degrades_the_query(
    embedded_postgres: SourcePostgres, pg_schema: str, tmp_path: Path
) -> None:
    (tmp_path / "warehouse").mkdir()
    (tmp_path / "warehouse" / "databases").write_text("a file where the server wants its databases")
    result = service_on(embedded_postgres, pg_schema, tmp_path).execute_query("SELECT 1 AS one")
    assert (result.value, result.degraded) == (None, True)
    assert "did not start" in result.reasons[0]


def test_a_retried_message_with_its_idempotency_key_is_stored_once(
    embedded_postgres: SourcePostgres, pg_schema: str, embedded_state_dir: Path
) -> None:
    down = RedisStore(url=f"redis://127.0.0.1:{free_port()}/0")
    strict = service_on(embedded_postgres, pg_schema, embedded_state_dir, cache=down, allow_degraded=False)
    with pytest.raises(TierUnavailableError):
        strict.add_conversation_memory("user-retry", "pay the invoice", idempotency_key="msg-1")
    lenient = service_on(embedded_postgres, pg_schema, embedded_state_dir)
    first = lenient.add_conversation_memory("user-retry", "pay the invoice", idempotency_key="msg-1")
    again = lenient.add_conversation_memory("user-retry", "pay the invoice", idempotency_key="msg-1")
    assert first.value == again.value
    assert [m["content"] for m in lenient.get_conversation_context("user-retry").value] == ["pay the invoice"]


def test_a_context_cached_before_redis_went_away_is_never_served_after_it_returns(
    redis_server: RedisServer, embedded_postgres: SourcePostgres, pg_schema: str, embedded_state_dir: Path
) -> None:
    cache = RedisStore(url=redis_server.url, prefix="stale-ctx", socket_timeout_seconds=0.5)
    service = service_on(embedded_postgres, pg_schema, embedded_state_dir, cache=cache)
    service.add_conversation_memory("user-stale", "first")
    assert service.get_conversation_context("user-stale").tier == "L2 postgres"
    assert service.get_conversation_context("user-stale").tier == "L1 redis"
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        assert service.add_conversation_memory("user-stale", "second").degraded
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    context = service.get_conversation_context("user-stale")
    assert [m["content"] for m in context.value] == ["first", "second"] or context.degraded
    assert [m["content"] for m in context.value] == ["first", "second"]


def test_a_stopped_embedded_postgres_is_started_again(make_state_dir: Callable[[str], Path], pg_schema: str) -> None:
    state_dir = make_state_dir("service-pg-restart")
    service = service_on(SourcePostgres(state_dir=str(state_dir)), pg_schema, state_dir)
    assert not service.add_conversation_memory("user-pg", "before").degraded
    stop_embedded_postgres(state_dir)
    after = service.add_conversation_memory("user-pg", "after")
    assert (after.degraded, after.reasons) == (False, ())
    assert [m["content"] for m in service.get_conversation_context("user-pg").value] == ["before", "after"]

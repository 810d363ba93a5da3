"""UnifiedMemoryService on the real tiers, and its degraded mode when a tier is down."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sophia_dagster.memory.conversations import ConversationStore
from sophia_dagster.memory.errors import TierUnavailableError
from sophia_dagster.memory.l1_redis import RedisStore
from sophia_dagster.memory.l3_pgvector import PgVectorKnowledgeStore
from sophia_dagster.memory.l5_cortex import CortexResource
from sophia_dagster.memory.service import UnifiedMemoryService
from sophia_dagster.postgres_source import SourcePostgres
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource
from tests.memory.conftest import free_port
from tests.memory.fake_cortex import fake_cortex, prod_cortex


@pytest.fixture
def make_service(
    embedded_postgres: SourcePostgres,
    pg_schema: str,
    embedded_state_dir: Path,
    make_redis_store: Callable[..., RedisStore],
) -> Callable[..., UnifiedMemoryService]:
    def make(
        cache: RedisStore | None = None, allow_degraded: bool = True, cortex: CortexResource | None = None
    ) -> UnifiedMemoryService:
        warehouse = embedded_snowflake_resource(embedded_state_dir)
        return UnifiedMemoryService(
            knowledge=PgVectorKnowledgeStore(postgres=embedded_postgres, schema_name=pg_schema),
            conversations=ConversationStore(postgres=embedded_postgres, schema_name=pg_schema),
            warehouse=warehouse,
            cortex=cortex or CortexResource(snowflake=warehouse, available=False),
            cache=cache or make_redis_store(),
            allow_degraded=allow_degraded,
        )

    return make


def _down_cache() -> RedisStore:
    return RedisStore(url=f"redis://127.0.0.1:{free_port()}/0")


def test_knowledge_is_added_and_found(make_service: Callable[..., UnifiedMemoryService]) -> None:
    service = make_service()
    added = service.add_knowledge("Quarterly churn review for the logistics segment", {"team": "cs"}, doc_id="k-churn")
    service.add_knowledge("Kubernetes upgrade runbook for the data platform", {"team": "eng"}, doc_id="k-k8s")
    assert (added.value, added.tier, added.degraded) == ("k-churn", "L3 pgvector", False)
    found = service.search_knowledge("churn review logistics", limit=1)
    assert [hit.id for hit in found.value] == ["k-churn"]
    assert service.search_knowledge("churn review logistics", filters={"team": "eng"}).value[0].id == "k-k8s"


def test_conversation_context_is_cached_and_invalidated(make_service: Callable[..., UnifiedMemoryService]) -> None:
    service = make_service()
    for text in ("hello", "what is my renewal date?"):
        assert service.add_conversation_memory("user-ctx", text).tier == "L2 postgres"
    first = service.get_conversation_context("user-ctx")
    second = service.get_conversation_context("user-ctx", limit=1)
    assert first.tier == "L2 postgres" and second.tier == "L1 redis"
    assert [m["content"] for m in first.value] == ["hello", "what is my renewal date?"]
    assert [m["content"] for m in second.value] == ["what is my renewal date?"]
    service.add_conversation_memory("user-ctx", "it is in March", role="assistant")
    third = service.get_conversation_context("user-ctx")
    assert third.tier == "L2 postgres" and third.value[-1]["role"] == "assistant"
    with pytest.raises(ValueError, match="message role 'robot' is not one of"):
        service.add_conversation_memory("user-ctx", "beep", role="robot")


def test_cache_down_degrades_but_answers_from_postgres(make_service: Callable[..., UnifiedMemoryService]) -> None:
    service = make_service(cache=_down_cache())
    written = service.add_conversation_memory("user-degraded", "still stored")
    assert written.value is not None and written.degraded
    assert "cached context not invalidated" in written.reasons[0]
    context = service.get_conversation_context("user-degraded")
    assert context.degraded and context.tier == "L2 postgres"
    assert [m["content"] for m in context.value] == ["still stored"]
    assert "cache unavailable: L1 redis is unreachable" in context.reasons[0]


def test_cortex_in_local_is_degraded_never_invented(make_service: Callable[..., UnifiedMemoryService]) -> None:
    result = make_service().analyze_with_cortex("The customer is happy with the rollout.", "sentiment")
    assert (result.value, result.degraded) == (None, True)
    assert "L5 cortex unavailable: CortexUnavailableError" in result.reasons[0]


def test_cortex_in_prod_answers_through_snowflake(make_service: Callable[..., UnifiedMemoryService]) -> None:
    with fake_cortex() as fake:
        service = make_service(cortex=prod_cortex(fake.port))
        summary = service.analyze_with_cortex("Long call transcript", "summarize")
        completion = service.analyze_with_cortex("Next step?", "complete")
    assert (summary.value, summary.tier, summary.degraded) == ("Customer wants a discount.", "L5 cortex", False)
    assert completion.value == "Offer a pilot."
    assert "SELECT SNOWFLAKE.CORTEX.COMPLETE('mistral-large2', 'Next step?')" in fake.queries


def test_warehouse_query_and_strict_mode(make_service: Callable[..., UnifiedMemoryService]) -> None:
    rows = make_service().execute_query("SELECT %(a)s + 1 AS answer", {"a": 41})
    assert (rows.value, rows.degraded) == ([{"ANSWER": 42}], False)
    strict = make_service(cache=_down_cache(), allow_degraded=False)
    with pytest.raises(TierUnavailableError, match="L1 redis is unreachable"):
        strict.get_conversation_context("anyone")

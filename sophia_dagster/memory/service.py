"""`UnifiedMemoryService`: the seed's memory API for application code, on the same tiers as the assets.

Every call returns a `MemoryResult` naming the tier that answered. When a tier is down and degraded
mode is allowed (the default), the call still returns: `degraded=True`, `reasons` says what failed, and
`value` is whatever the remaining tiers could give, or None. It never substitutes a made-up value.
With `allow_degraded=False` the same failures raise.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg
import redis
import snowflake.connector.errors
from dagster_snowflake import SnowflakeResource

from sophia_dagster.memory.conversations import ConversationStore
from sophia_dagster.memory.errors import MemoryTierError, MissingValueError
from sophia_dagster.memory.l1_redis import RedisStore
from sophia_dagster.memory.l3_vectors import FilterValue, Hit, KnowledgeStore
from sophia_dagster.memory.l5_cortex import CortexResource
from sophia_dagster.memory.refs import TTL_METADATA_KEY, OutputRef

T = TypeVar("T")
UNAVAILABLE = (
    MemoryTierError,
    OSError,
    psycopg.OperationalError,
    redis.exceptions.ConnectionError,
    snowflake.connector.errors.OperationalError,
    snowflake.connector.errors.InterfaceError,
)
KNOWLEDGE = OutputRef(("service", "knowledge"))


@dataclass(frozen=True)
class MemoryResult(Generic[T]):
    """What a memory call returned, which tier answered, and whether some tier was missing."""

    value: T | None
    tier: str
    degraded: bool = False
    reasons: tuple[str, ...] = ()


class UnifiedMemoryService:
    """Knowledge (L3), conversation memory (L2, cached in L1), warehouse queries (L4) and Cortex (L5).

    A user's last `context_window` messages are cached for `context_ttl_seconds`; appending a message
    drops the cached copy, so a context read lags a write by at most that TTL (when the two race).
    """

    def __init__(
        self,
        *,
        knowledge: KnowledgeStore,
        conversations: ConversationStore,
        warehouse: SnowflakeResource,
        cortex: CortexResource,
        cache: RedisStore | None = None,
        context_window: int = 50,
        context_ttl_seconds: int = 60,
        allow_degraded: bool = True,
    ) -> None:
        self.knowledge, self.conversations, self.warehouse = knowledge, conversations, warehouse
        self.cortex, self.cache = cortex, cache
        self.context_window, self.context_ttl_seconds = context_window, context_ttl_seconds
        self.allow_degraded = allow_degraded
        self._stale: set[str] = set()
        """Users whose cached context could not be invalidated: dropped before it is ever served again."""

    def add_knowledge(
        self, content: str, metadata: Mapping[str, Any] | None = None, doc_id: str | None = None
    ) -> MemoryResult[str]:
        """Store a document in the knowledge base; the value is its id."""
        doc = {"id": doc_id or uuid.uuid4().hex, "content": content, "metadata": dict(metadata or {})}

        def add() -> str:
            self.knowledge.add(KNOWLEDGE, [doc])
            return doc["id"]

        return self._call(self.knowledge.tier, add)

    def search_knowledge(
        self, query: str, limit: int = 5, filters: Mapping[str, FilterValue] | None = None
    ) -> MemoryResult[list[Hit]]:
        """The documents nearest to `query` whose metadata matches `filters`."""
        return self._call(self.knowledge.tier, lambda: self.knowledge.search(query, limit, filters))

    def add_conversation_memory(
        self,
        user_id: str,
        content: str,
        role: str = "user",
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> MemoryResult[int]:
        """Append a message to the user's conversation; the value is the message id.

        A caller that retries after an error passes the same `idempotency_key`: the message is stored once.
        """
        result = self._call(
            self.conversations.tier,
            lambda: self.conversations.append(user_id, role, content, dict(metadata or {}), idempotency_key),
        )
        if result.value is None or self.cache is None:
            return result
        try:
            self.cache.delete(self._context_ref(user_id))
        except MemoryTierError as exc:
            self._stale.add(user_id)
            self._require_degraded_mode(exc)
            stale = f"cached context not invalidated, may be stale for up to {self.context_ttl_seconds}s: {exc}"
            return self._degraded(result, stale)
        return result

    def get_conversation_context(self, user_id: str, limit: int = 20) -> MemoryResult[list[dict[str, Any]]]:
        """The user's last `limit` messages, oldest first: from the cache when it has them, else L2."""
        if limit > self.context_window or self.cache is None:
            return self._call(self.conversations.tier, lambda: self.conversations.recent(user_id, limit))
        ref, reasons = self._context_ref(user_id), []
        try:
            self._drop_stale(user_id, ref)
            return MemoryResult(self.cache.read(ref).value[-limit:], self.cache.tier)
        except MissingValueError:
            pass
        except MemoryTierError as exc:
            self._require_degraded_mode(exc)
            reasons.append(f"cache unavailable: {exc}")
        result = self._call(self.conversations.tier, lambda: self.conversations.recent(user_id, self.context_window))
        if result.value is not None and not reasons:
            try:
                self.cache.write(ref, result.value, uuid.uuid4().hex)
            except MemoryTierError as exc:
                self._require_degraded_mode(exc)
                reasons.append(f"cache unavailable: {exc}")
        window = result.value[-limit:] if result.value is not None else None
        return self._degraded(MemoryResult(window, result.tier, result.degraded, result.reasons), *reasons)

    def execute_query(self, sql: str, params: Mapping[str, Any] | None = None) -> MemoryResult[list[dict[str, Any]]]:
        """Rows of a warehouse query as dicts (column names as the warehouse reports them)."""
        return self._call("L4 warehouse", lambda: self._query(sql, params))

    def analyze_with_cortex(self, text: str, analysis: str = "summarize", **arguments: str) -> MemoryResult[Any]:
        """Run a Cortex function (summarize, sentiment, translate, complete) on `text`."""
        key = "prompt" if analysis == "complete" else "text"
        if analysis == "complete":
            arguments.setdefault("model", self.cortex.complete_model)
        return self._call("L5 cortex", lambda: self.cortex.run(analysis, **{key: text, **arguments}))

    def _query(self, sql: str, params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        with self.warehouse.get_connection() as conn:
            cursor = conn.cursor()
            cursor.execute(sql, dict(params or {}))
            names = [column[0] for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _drop_stale(self, user_id: str, ref: OutputRef) -> None:
        """Delete a cached context whose invalidation failed (Redis was down); raises while it still cannot."""
        if user_id in self._stale:
            self.cache.delete(ref)
            self._stale.discard(user_id)

    def _context_ref(self, user_id: str) -> OutputRef:
        return OutputRef(("service", "conversation_context"), user_id, {TTL_METADATA_KEY: self.context_ttl_seconds})

    def _call(self, tier: str, action: Callable[[], T]) -> MemoryResult[T]:
        """Run one tier operation; in degraded mode a failure becomes a degraded, empty result."""
        try:
            return MemoryResult(action(), tier)
        except UNAVAILABLE as exc:
            self._require_degraded_mode(exc)
            return MemoryResult(None, "", True, (f"{tier} unavailable: {type(exc).__name__}: {exc}",))

    def _require_degraded_mode(self, exc: Exception) -> None:
        """Re-raise a tier failure unless degraded mode is allowed."""
        if not self.allow_degraded:
            raise exc

    @staticmethod
    def _degraded(result: MemoryResult[T], *reasons: str) -> MemoryResult[T]:
        if not reasons:
            return result
        return MemoryResult(result.value, result.tier, True, (*result.reasons, *reasons))

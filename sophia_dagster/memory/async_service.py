"""`AsyncUnifiedMemoryService`: the seed's async memory API, running the sync service's logic in worker threads.

Why threads and not native async drivers: the logic worth sharing (which tier answers, degraded mode,
invalidating the cached context after a write) lives in `UnifiedMemoryService`, and two of its tiers
have no asyncio driver at all (the Snowflake connector behind L3/L4/L5 in prod, and the
`SnowflakeResource` the embedded warehouse shares). Rewriting the service over redis.asyncio and
psycopg's AsyncConnection would copy that logic for two tiers and still need threads for the rest.
So every call runs the sync method in a bounded thread pool: psycopg, redis-py and the Snowflake
connector release the GIL while they wait on the network, so calls overlap; `max_workers` bounds how
many PostgreSQL connections and Snowflake sessions the service holds at once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

from sophia_dagster.config import Settings
from sophia_dagster.memory.l3_vectors import FilterValue, Hit
from sophia_dagster.memory.resources import memory_service
from sophia_dagster.memory.service import MemoryResult, UnifiedMemoryService

P = ParamSpec("P")
T = TypeVar("T")


class AsyncUnifiedMemoryService:
    """The `UnifiedMemoryService` calls as coroutines; an async context manager owning its threads and connections.

    Args:
        service: the sync service whose tiers and degraded-mode rules every call uses.
        max_workers: calls that run at once; more wait their turn (default 16).

    Example:
        >>> async with AsyncUnifiedMemoryService(memory_service(settings)) as memory:
        ...     ids = await asyncio.gather(*(memory.add_conversation_memory(u, "hi") for u in users))
    """

    def __init__(self, service: UnifiedMemoryService, max_workers: int = 16) -> None:
        self.service = service
        self.max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> Self:
        if self._pool is not None:
            raise RuntimeError("AsyncUnifiedMemoryService is already open")
        self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="sophia-memory")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Wait for the calls in flight, stop the threads and close the Redis connections they opened."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
        if self.service.cache is not None:
            self.service.cache.close()

    async def _run(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._pool is None:
            raise RuntimeError("use AsyncUnifiedMemoryService inside `async with`")
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(method, *args, **kwargs))

    async def add_knowledge(
        self, content: str, metadata: Mapping[str, Any] | None = None, doc_id: str | None = None
    ) -> MemoryResult[str]:
        """Store a document in the knowledge base; the value is its id."""
        return await self._run(self.service.add_knowledge, content, metadata, doc_id)

    async def search_knowledge(
        self, query: str, limit: int = 5, filters: Mapping[str, FilterValue] | None = None
    ) -> MemoryResult[list[Hit]]:
        """The documents nearest to `query` whose metadata matches `filters`."""
        return await self._run(self.service.search_knowledge, query, limit, filters)

    async def add_conversation_memory(
        self,
        user_id: str,
        content: str,
        role: str = "user",
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> MemoryResult[int]:
        """Append a message to the user's conversation; the value is the message id (stored once per key)."""
        return await self._run(self.service.add_conversation_memory, user_id, content, role, metadata, idempotency_key)

    async def get_conversation_context(self, user_id: str, limit: int = 20) -> MemoryResult[list[dict[str, Any]]]:
        """The user's last `limit` messages, oldest first: from the cache when it has them, else L2."""
        return await self._run(self.service.get_conversation_context, user_id, limit)

    async def execute_query(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> MemoryResult[list[dict[str, Any]]]:
        """Rows of a warehouse query as dicts (column names as the warehouse reports them)."""
        return await self._run(self.service.execute_query, sql, params)

    async def analyze_with_cortex(self, text: str, analysis: str = "summarize", **arguments: str) -> MemoryResult[Any]:
        """Run a Cortex function (summarize, sentiment, translate, complete) on `text`."""
        return await self._run(self.service.analyze_with_cortex, text, analysis, **arguments)


def async_memory_service(
    settings: Settings, allow_degraded: bool = True, max_workers: int = 16
) -> AsyncUnifiedMemoryService:
    """An `AsyncUnifiedMemoryService` on the tiers of `settings.environment`; open it with `async with`."""
    return AsyncUnifiedMemoryService(memory_service(settings, allow_degraded), max_workers)

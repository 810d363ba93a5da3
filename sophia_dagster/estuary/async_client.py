"""`AsyncEstuaryClient`: Estuary's read surfaces (live specs, status, stats) over `httpx.AsyncClient`.

For application code that asks about many tasks at once (`asyncio.gather`). It shares every decision with
the sync `EstuaryClient` and changes only the I/O: the same request builders and parsers
(`client.live_specs_query`, `status_query`, `stats_query`, `stats_row`, `in_order`), the same retry,
redirect and error rules (`http.response_outcome`, `transport_outcome`, `retry_delay`), the same token
steps (`TokenSource.current`, `exchange_body`, `accept`) and the same redaction. Publishing stays on the
sync client: it is a minutes-long, strictly ordered conversation (draft, stage, publish, poll) that gains
nothing from overlapping, and the Dagster assets and `sophia-estuary` already drive it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx

from sophia_dagster.estuary.auth import TokenSource
from sophia_dagster.estuary.client import (
    EXCHANGE_PATH,
    LIVE_SPECS_BATCH,
    STATS_BATCH,
    STATUS_BATCH,
    STATUS_PATH,
    LiveSpec,
    in_order,
    live_specs_query,
    stats_query,
    stats_row,
    status_query,
)
from sophia_dagster.estuary.http import (
    Redactor,
    RetryPolicy,
    response_outcome,
    retry_delay,
    transport_outcome,
)
from sophia_dagster.estuary.models import TaskStats, TaskStatus
from sophia_dagster.estuary.postgrest import PAGE_SIZE, batched, page_window
from sophia_dagster.estuary.stats import floor_to_grain


class AsyncEstuaryClient:
    """Reads of Estuary's control plane as coroutines; an async context manager that closes its connections.

    Args:
        api_token: refresh token (base64 JSON) or access JWT.
        pg_url, agent_url, anon_key: Estuary's PostgREST and agent endpoints and the public PostgREST key.
        timeout_seconds: per request.
        retry: how transient failures (429, 5xx, timeouts, dropped connections) are retried.

    Example:
        >>> async with AsyncEstuaryClient(token, pg_url=..., agent_url=..., anon_key=...) as estuary:
        ...     statuses, stats = await asyncio.gather(estuary.status(names), estuary.stats(names, since))
    """

    def __init__(
        self,
        api_token: str,
        *,
        pg_url: str,
        agent_url: str,
        anon_key: str,
        timeout_seconds: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.pg_url, self.agent_url, self.anon_key = pg_url.rstrip("/"), agent_url.rstrip("/"), anon_key
        self.policy = retry or RetryPolicy()
        self.redactor = Redactor()
        self.tokens = TokenSource(api_token, self._no_sync_exchange, self.redactor)
        self._timeout, self._transport = timeout_seconds, transport
        self._client: httpx.AsyncClient | None = None
        self._exchange_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        if self._client is not None:
            raise RuntimeError("AsyncEstuaryClient is already open")
        self._client = httpx.AsyncClient(timeout=self._timeout, transport=self._transport, follow_redirects=False)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Close the connection pool opened by `async with`."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @staticmethod
    def _no_sync_exchange(body: dict[str, str]) -> dict[str, Any]:
        raise RuntimeError("the async client exchanges tokens with `await`")

    async def request(
        self, method: str, url: str, *, params: Any = None, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Send a request, retrying transient failures exactly as the sync client does."""
        if self._client is None:
            raise RuntimeError("use AsyncEstuaryClient inside `async with`")
        path, started, attempt = httpx.URL(url).path, time.monotonic(), 0
        while True:
            attempt += 1
            try:
                response = await self._client.request(method, url, params=params, json=json, headers=headers)
                outcome = response_outcome(method, path, response, self.redactor)
            except httpx.TransportError as exc:
                outcome = transport_outcome(method, path, exc)
            if isinstance(outcome, httpx.Response):
                return outcome
            await asyncio.sleep(retry_delay(self.policy, outcome, attempt, started))
            url = outcome.location or url

    async def access_token(self) -> str:
        """A JWT valid for at least another minute; concurrent callers share one exchange."""
        if (jwt := self.tokens.current()) is not None:
            return jwt
        async with self._exchange_lock:
            if (jwt := self.tokens.current()) is not None:
                return jwt
            body = self.tokens.exchange_body()
            answer = await self.request("POST", f"{self.pg_url}/{EXCHANGE_PATH}", json=body, headers=self._apikey())
            return self.tokens.accept(answer.json())

    def _apikey(self) -> dict[str, str]:
        return {"apikey": self.anon_key}

    async def _rows(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """All rows of a PostgREST read, paged like the sync client's."""
        rows: list[dict[str, Any]] = []
        while True:
            headers = {
                "Authorization": f"Bearer {await self.access_token()}",
                **self._apikey(),
                **page_window(len(rows)),
            }
            page = (await self.request("GET", f"{self.pg_url}/{path}", params=params, headers=headers)).json()
            rows.extend(page)
            if len(page) < PAGE_SIZE:
                return rows

    async def live_specs(self, names: Sequence[str]) -> list[LiveSpec]:
        """The live (published, not deleted) specs among ``names``; batches are read concurrently."""
        pages = await asyncio.gather(
            *(self._rows("live_specs_ext", live_specs_query(b)) for b in batched(list(names), LIVE_SPECS_BATCH))
        )
        return [LiveSpec.model_validate(row) for page in pages for row in page]

    async def status(self, names: Sequence[str]) -> list[TaskStatus]:
        """Controller status of each name, in the order asked (100 names per request, requests concurrent)."""

        async def batch_status(batch: Sequence[str]) -> list[dict[str, Any]]:
            headers = {"Authorization": f"Bearer {await self.access_token()}"}
            answer = await self.request(
                "GET", f"{self.agent_url}/{STATUS_PATH}", params=status_query(batch), headers=headers
            )
            return answer.json()

        answers = await asyncio.gather(*(batch_status(b) for b in batched(list(names), STATUS_BATCH)))
        return in_order(names, {row["catalog_name"]: TaskStatus.from_api(row) for rows in answers for row in rows})

    async def stats(self, names: Sequence[str], since: datetime, grain: str = "hourly") -> list[TaskStats]:
        """Stats rows of ``names`` from the bucket holding ``since`` on, in the sync client's order."""
        floor_to_grain(since, grain)  # an unknown grain fails before any request
        pages = await asyncio.gather(
            *(
                self._rows(f"catalog_stats_{grain}", stats_query(b, since, grain))
                for b in batched(list(names), STATS_BATCH)
            )
        )
        return [stats_row(row) for page in pages for row in page]

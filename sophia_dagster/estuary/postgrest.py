"""Estuary's PostgREST surface (``pg_url``): authenticated requests, paged reads, batched ``in.(...)`` filters."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from sophia_dagster.estuary.auth import TokenSource
from sophia_dagster.estuary.http import EstuaryHttp

PAGE_SIZE = 1000
OBJECT = {"Accept": "application/vnd.pgrst.object+json", "Prefer": "return=representation"}
"""Headers asking PostgREST for the created row back as one object."""


def batched(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def in_filter(names: Sequence[str]) -> str:
    """A PostgREST ``in.(…)`` filter with quoted names."""
    return "in.(" + ",".join(f'"{name}"' for name in names) + ")"


def first_row(answer: Any) -> dict[str, Any]:
    """The row of a single-object answer (PostgREST may still send a one-element list)."""
    return answer[0] if isinstance(answer, list) else answer


def bearer(tokens: TokenSource, extra: Mapping[str, str] | None = None) -> Callable[[], dict[str, str]]:
    """Headers with a valid access token, built per attempt: a retry may come after the token expired."""
    return lambda: {"Authorization": f"Bearer {tokens.access_token()}", **(extra or {})}


class PostgRest:
    """Requests to Estuary's PostgREST API with the public ``apikey`` and a user's access token."""

    def __init__(self, http: EstuaryHttp, tokens: TokenSource, pg_url: str, anon_key: str) -> None:
        self.http, self.tokens, self.url, self.anon_key = http, tokens, pg_url.rstrip("/"), anon_key

    def request(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request (retried by the HTTP layer) to ``pg_url/path``."""
        auth = bearer(self.tokens, {"apikey": self.anon_key, **(headers or {})})
        return self.http.request(method, f"{self.url}/{path}", headers=auth, **kwargs)

    def rows(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """All rows of a read, paged with ``Range`` until a short page."""
        rows: list[dict[str, Any]] = []
        while True:
            window = {"Range-Unit": "items", "Range": f"{len(rows)}-{len(rows) + PAGE_SIZE - 1}"}
            page = self.request("GET", path, params=params, headers=window).json()
            rows.extend(page)
            if len(page) < PAGE_SIZE:
                return rows

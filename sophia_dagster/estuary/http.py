"""HTTP calls to Estuary with bounded retries and error messages that name the endpoint, never a secret.

Retried: 429 (honouring ``Retry-After`` in seconds or as an HTTP date), 5xx, timeouts and connection
errors, with capped exponential backoff, jitter and a bound on the total time spent. The agent API's
307 + ``Location`` + ``Retry-After`` is followed after the delay it asks for (only to the same scheme, host
and port: the request carries the access token). Any other 4xx is raised at once after exactly one request.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

import httpx
from pydantic import BaseModel, ConfigDict

from sophia_dagster.estuary.errors import EstuaryAPIError

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 500
TRANSIENT_TRANSPORT_ERRORS = (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)
"""Failures worth another try; others (an unsupported scheme, a malformed request) would fail the same way again."""


class RetryPolicy(BaseModel):
    """How transient failures are retried."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = 8
    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    max_total_seconds: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): capped exponential with equal jitter."""
        ceiling = min(self.max_backoff_seconds, self.initial_backoff_seconds * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Redactor:
    """Replaces known secret values in text before it goes into an exception or a log line."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, values: Iterable[str | None]) -> None:
        """Remember values that must never be shown (short values are ignored: they would mangle text)."""
        self._secrets.update(v for v in values if v and len(v) >= 6)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def error_message(response: httpx.Response) -> tuple[str, str | None]:
    """Estuary's message and code from an error response (PostgREST JSON, agent JSON, or plain text)."""
    try:
        body = response.json()
    except ValueError:
        return (response.text.strip()[:MAX_MESSAGE_CHARS] or response.reason_phrase), None
    if not isinstance(body, dict):
        return str(body)[:MAX_MESSAGE_CHARS], None
    parts = [str(body[k]) for k in ("message", "details", "hint") if body.get(k)]
    code = body.get("code") or body.get("error")
    return ("; ".join(parts) or str(body))[:MAX_MESSAGE_CHARS], str(code) if code is not None else None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port: a redirect elsewhere is never followed, so the bearer token stays with Estuary."""
    return url.scheme, url.host, url.port


class Transient(NamedTuple):
    """A failed attempt worth retrying, and the server's requested delay if it gave one."""

    error: EstuaryAPIError
    retry_after: float | None
    location: str | None = None


def transport_outcome(method: str, path: str, exc: httpx.TransportError) -> Transient:
    """What a request that got no answer means: worth another try, or (request never sent) an error raised now."""
    if isinstance(exc, httpx.TimeoutException):
        return Transient(EstuaryAPIError(method, path, None, "timed out"), None)
    if isinstance(exc, TRANSIENT_TRANSPORT_ERRORS):
        return Transient(EstuaryAPIError(method, path, None, f"connection failed: {type(exc).__name__}"), None)
    raise EstuaryAPIError(method, path, None, f"request not sent: {type(exc).__name__}") from None


def response_outcome(method: str, path: str, response: httpx.Response, redact: Redactor) -> httpx.Response | Transient:
    """What an answer means: the response on success, a :class:`Transient` when worth retrying; raises otherwise.

    Shared by the sync and async transports, so both retry, redirect and fail alike.
    """
    if response.is_success:
        return response
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if response.status_code in (307, 308) and "Location" in response.headers:
        location = response.url.join(response.headers["Location"])
        if _origin(location) != _origin(response.url):
            raise EstuaryAPIError(
                method, path, response.status_code, f"redirected to another host ({location.host}); not followed"
            )
        return Transient(
            EstuaryAPIError(method, path, response.status_code, "redirected"), retry_after or 0.0, str(location)
        )
    message, code = error_message(response)
    error = EstuaryAPIError(method, path, response.status_code, redact(message), code)
    if response.status_code == 429 or response.status_code >= 500:
        return Transient(error, retry_after)
    raise error


def retry_delay(policy: RetryPolicy, transient: Transient, attempt: int, started: float) -> float:
    """Seconds to wait before the next attempt; raises the error when attempts or the time budget are spent."""
    error, retry_after = transient.error, transient.retry_after
    delay = retry_after if retry_after is not None else policy.backoff(attempt)
    spent = time.monotonic() - started
    if attempt >= policy.max_attempts or spent + delay > policy.max_total_seconds:
        raise EstuaryAPIError(
            error.method,
            error.path,
            error.status,
            f"{error.estuary_message} (gave up after {attempt} attempts in {spent:.1f}s)",
            error.code,
        )
    log.warning("Estuary %s %s: %s; retrying in %.2fs", error.method, error.path, error.estuary_message, delay)
    return delay


class EstuaryHttp:
    """One httpx client plus the retry loop; every Estuary surface goes through :meth:`request`."""

    def __init__(
        self,
        timeout_seconds: float,
        policy: RetryPolicy,
        redactor: Redactor,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self.redact = redactor
        self._client = httpx.Client(timeout=timeout_seconds, transport=transport, follow_redirects=False)

    def close(self) -> None:
        """Release connections."""
        self._client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
        recover: Callable[[], httpx.Response | None] | None = None,
    ) -> httpx.Response:
        """Send a request, retrying transient failures; raise :class:`EstuaryAPIError` otherwise.

        ``headers`` may be a function, called before every attempt (so a retry carries a fresh access token).
        ``recover`` is consulted before re-sending a non-idempotent request whose answer was lost:
        when it finds the effect of the first attempt, that answer is returned instead of sending again.
        """
        path = httpx.URL(url).path
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1 and recover is not None and (found := recover()) is not None:
                return found
            sent = headers() if callable(headers) else headers
            outcome = self._attempt(method, url, path, params, json, sent)
            if isinstance(outcome, httpx.Response):
                return outcome
            self._wait_or_raise(outcome, attempt, started)
            url = outcome.location or url

    def _attempt(
        self, method: str, url: str, path: str, params: Any, json: Any, headers: Mapping[str, str] | None
    ) -> httpx.Response | Transient:
        """One try: the response on success, a :class:`Transient` when worth retrying; raises otherwise."""
        try:
            response = self._client.request(method, url, params=params, json=json, headers=headers)
        except httpx.TransportError as exc:
            return transport_outcome(method, path, exc)
        return response_outcome(method, path, response, self.redact)

    def _wait_or_raise(self, transient: Transient, attempt: int, started: float) -> None:
        """Sleep before the next attempt, or raise the error when attempts or the time budget are spent."""
        time.sleep(retry_delay(self.policy, transient, attempt, started))

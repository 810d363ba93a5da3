"""A fake HubSpot CRM: a real local HTTP server answering in the shapes of HubSpot's v3 CRM API.

It serves, for any object type it holds (``contacts``, ``companies``, ``deals``, ``calls``, ...):

- ``GET /crm/v3/properties/{object}``: the object's property definitions;
- ``GET /crm/v3/objects/{object}``: the paged listing (``limit`` <= 100, opaque ``after`` cursors, ``properties``,
  ``archived``), archived records carrying ``archivedAt``;
- ``POST /crm/v3/objects/{object}/search``: ``filterGroups`` on the last-modified property (``GTE``, ``GT``,
  ``LTE``, ``LT``, ``EQ``; epoch milliseconds or ISO 8601), ``sorts``, ``limit`` <= 200, numeric ``after``
  offsets that stop at 10,000, and ``total``; archived records are never found by search.

Errors are HubSpot's: 401 ``INVALID_AUTHENTICATION`` for a missing or wrong bearer token, 403
``MISSING_SCOPES`` for an object the token may not read, 429 ``RATE_LIMIT`` with ``Retry-After`` when a
test asks for throttling. Every request is logged so tests can count them.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http import JsonHandler, serving

LIST_LIMIT, SEARCH_LIMIT, SEARCH_MAX_OFFSET = 100, 200, 10_000
DEFAULTS = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id"),
}


def iso(at: datetime) -> str:
    """HubSpot's timestamp format: UTC, milliseconds, ``Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def modified_property(object_type: str) -> str:
    """The last-modified property: contacts still use ``lastmodifieddate``, every other object ``hs_lastmodifieddate``."""
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


@dataclass
class Record:
    """One CRM object as HubSpot stores it."""

    id: int
    properties: dict[str, str | None]
    created: datetime
    updated: datetime
    archived_at: datetime | None = None

    def as_json(self, object_type: str, wanted: list[str] | None) -> dict[str, Any]:
        """The record as the API returns it, with the requested properties (the object's defaults otherwise)."""
        stored = {
            **self.properties,
            "hs_object_id": str(self.id),
            "createdate": iso(self.created),
            modified_property(object_type): iso(self.updated),
        }
        names = wanted or DEFAULTS.get(object_type, ("createdate", "hs_lastmodifieddate", "hs_object_id"))
        body = {
            "id": str(self.id),
            "properties": {name: stored.get(name) for name in names},
            "createdAt": iso(self.created),
            "updatedAt": iso(self.updated),
            "archived": self.archived_at is not None,
        }
        if self.archived_at is not None:
            body["archivedAt"] = iso(self.archived_at)
        return body


class HubSpotError(Exception):
    """An error answer in HubSpot's shape."""

    def __init__(self, status: int, category: str, message: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(status)
        self.status, self.headers = status, headers or {}
        self.body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
        self.body.update(extra)


@dataclass
class FakeHubSpot:
    """The CRM's state, the access token it accepts, and the faults a test asks for."""

    token: str = "pat-na1-" + uuid.uuid4().hex
    objects: dict[str, dict[int, Record]] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    throttled: deque[float] = field(default_factory=deque)
    clock: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # the CRM, as users change it -------------------------------------------------------------------------
    def tick(self, seconds: float = 1.0) -> datetime:
        """Move HubSpot's clock forward; returns the new time (every change is stamped with it)."""
        self.clock += timedelta(seconds=seconds)
        return self.clock

    def create(self, object_type: str, **properties: str | None) -> int:
        """A new record, stamped now; returns its id."""
        now = self.tick()
        record = Record(next(self._ids), dict(properties), now, now)
        self.objects.setdefault(object_type, {})[record.id] = record
        return record.id

    def update(self, object_type: str, record_id: int, **properties: str | None) -> None:
        """Change a record's properties and its modification time."""
        record = self.objects[object_type][record_id]
        record.properties.update(properties)
        record.updated = self.tick()

    def archive(self, object_type: str, record_id: int) -> None:
        """Archive (delete) a record, as the UI's delete or ``DELETE /crm/v3/objects/...`` does."""
        record = self.objects[object_type][record_id]
        record.archived_at = record.updated = self.tick()

    def throttle(self, times: int, retry_after: float) -> None:
        """Answer the next ``times`` requests with 429 and ``Retry-After: retry_after``."""
        self.throttled.extend([retry_after] * times)

    # the API ---------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any, auth: str | None) -> Any:
        """The JSON answer to one request; raises :class:`HubSpotError` for error answers."""
        with self._lock:
            self.requests.append((method, path, body if body is not None else query))
            if auth != f"Bearer {self.token}":
                raise HubSpotError(
                    401,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                )
            if self.throttled:
                raise HubSpotError(
                    429,
                    "RATE_LIMITS",
                    "You have reached your secondly limit.",
                    headers={"Retry-After": f"{self.throttled.popleft():g}"},
                    errorType="RATE_LIMIT",
                    policyName="SECONDLY",
                )
            parts = path.strip("/").split("/")
            if parts[:3] == ["crm", "v3", "properties"] and len(parts) == 4 and method == "GET":
                return self._properties(self._records(parts[3]), parts[3])
            if parts[:3] == ["crm", "v3", "objects"] and len(parts) == 4 and method == "GET":
                return self._list(parts[3], self._records(parts[3]), query)
            if parts[:3] == ["crm", "v3", "objects"] and parts[4:] == ["search"] and method == "POST":
                return self._search(parts[3], self._records(parts[3]), body or {})
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"resource not found: {method} {path}")

    def _records(self, object_type: str) -> dict[int, Record]:
        if object_type in self.forbidden:
            raise HubSpotError(
                403,
                "MISSING_SCOPES",
                "This app hasn't been granted all required scopes to make this call. Read more about required "
                "scopes here: https://developers.hubspot.com/scopes.",
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [f"crm.objects.{object_type}.read"]},
                    }
                ],
            )
        return self.objects.setdefault(object_type, {})

    def _properties(self, records: dict[int, Record], object_type: str) -> dict[str, Any]:
        names = {name for r in records.values() for name in r.properties} | set(DEFAULTS.get(object_type, ()))
        names |= {"hs_object_id", "createdate", modified_property(object_type)}
        return {
            "results": [
                {"name": n, "label": n, "type": "string", "fieldType": "text", "calculated": False}
                for n in sorted(names)
            ]
        }

    def _list(self, object_type: str, records: dict[int, Record], query: dict[str, list[str]]) -> dict[str, Any]:
        limit = min(int(query.get("limit", ["10"])[0]), LIST_LIMIT)
        archived = query.get("archived", ["false"])[0] == "true"
        wanted = [p for value in query.get("properties", []) for p in value.split(",") if p]
        start = int(base64.b64decode(query["after"][0]).decode()) if "after" in query else 0
        chosen = sorted(r.id for r in records.values() if (r.archived_at is not None) == archived and r.id > start)
        page = chosen[:limit]
        body: dict[str, Any] = {"results": [records[i].as_json(object_type, wanted) for i in page]}
        if len(chosen) > limit:
            after = base64.b64encode(str(page[-1]).encode()).decode()
            body["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return body

    def _search(self, object_type: str, records: dict[int, Record], request: dict[str, Any]) -> dict[str, Any]:
        limit = min(int(request.get("limit", 10)), SEARCH_LIMIT)
        offset = int(request.get("after", 0))
        if offset + limit > SEARCH_MAX_OFFSET:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Paging offset {offset} exceeds the maximum of 10000")
        found = [r for r in records.values() if r.archived_at is None and _matches(object_type, r, request)]
        for sort in reversed(request.get("sorts") or []):
            found.sort(key=lambda r: _sort_value(object_type, r, sort["propertyName"]), reverse=_descending(sort))
        page = found[offset : offset + limit]
        body: dict[str, Any] = {
            "total": len(found),
            "results": [r.as_json(object_type, request.get("properties")) for r in page],
        }
        if offset + limit < len(found):
            body["paging"] = {"next": {"after": str(offset + limit)}}
        return body


def _descending(sort: dict[str, str]) -> bool:
    return sort.get("direction", "ASCENDING") == "DESCENDING"


def _millis(value: str) -> int:
    if value.isdigit():
        return int(value)
    return int(datetime.fromisoformat(value).timestamp() * 1000)


def _sort_value(object_type: str, record: Record, name: str) -> Any:
    if name in (modified_property(object_type), "lastmodifieddate", "hs_lastmodifieddate"):
        return record.updated
    if name in ("createdate", "hs_createdate"):
        return record.created
    return record.id if name == "hs_object_id" else (record.properties.get(name) or "")


def _matches(object_type: str, record: Record, request: dict[str, Any]) -> bool:
    groups = request.get("filterGroups") or [{"filters": request.get("filters") or []}]
    return any(all(_passes(object_type, record, f) for f in group.get("filters", [])) for group in groups)


def _passes(object_type: str, record: Record, condition: dict[str, str]) -> bool:
    name, op = condition["propertyName"], condition["operator"]
    if name not in (modified_property(object_type), "hs_lastmodifieddate", "lastmodifieddate"):
        raise HubSpotError(400, "VALIDATION_ERROR", f"this fake filters on the last-modified property only, not {name}")
    actual = int(record.updated.timestamp() * 1000)
    wanted = _millis(str(condition["value"]))
    checks = {"GTE": actual >= wanted, "GT": actual > wanted, "LTE": actual <= wanted, "LT": actual < wanted}
    if op == "BETWEEN":
        return wanted <= actual <= _millis(str(condition["highValue"]))
    return checks.get(op, actual == wanted)


class _Handler(JsonHandler):
    hubspot: FakeHubSpot

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        raw = self.read_body() if method == "POST" else b""
        try:
            body = json.loads(raw) if raw else None
            answer = self.hubspot.handle(method, url.path, parse_qs(url.query), body, self.headers.get("Authorization"))
        except HubSpotError as error:
            data = json.dumps(error.body).encode()
            self.send_response(error.status)
            for name, value in error.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.reply_json(200, answer)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


@contextmanager
def hubspot_server(hubspot: FakeHubSpot) -> Iterator[str]:
    """Serve ``hubspot`` on a free loopback port; yields the base URL (what ``HUBSPOT_API_URL`` takes)."""
    handler = type("HubSpotHandler", (_Handler,), {"hubspot": hubspot})
    with serving(handler) as port:
        yield f"http://127.0.0.1:{port}"

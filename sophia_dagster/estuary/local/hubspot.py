"""The HubSpot side of the embedded data plane: a CRM capture over HubSpot's v3 API.

It reads what Estuary's ``source-hubspot-native`` captures for CRM objects (contacts, companies, deals,
engagements, calls, ...) and writes Estuary's documents: ``id``, ``createdAt``, ``updatedAt``, ``archived``,
``properties`` (HubSpot's values, untouched) and ``_meta`` (``op`` c/u/d, ``row_id``).

- Backfill: the paged listing ``GET /crm/v3/objects/{object}`` (``after`` cursors) with every property the
  portal defines (``GET /crm/v3/properties/{object}``).
- Incremental: ``POST /crm/v3/objects/{object}/search`` for records modified after the cursor (the
  object's last-modified property, ascending), restarting from the newest time read when HubSpot's
  10,000-result window is reached. Objects the search API does not serve (``engagements``) are listed
  in full and filtered by ``updatedAt``.
- Deletes: archived records (``archived=true`` listing) become documents with ``_meta.op = 'd'``.
- The cursor is the newest modification (or archival) time read, in epoch milliseconds.

HTTP goes through the integration's retry loop: 429 waits for ``Retry-After``; 5xx and dropped connections
are retried with backoff; 401 and 403 stop at once with an error naming the token's variable, never its value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sophia_dagster.estuary.errors import EstuaryAPIError
from sophia_dagster.estuary.http import EstuaryHttp, Redactor, RetryPolicy

DEFAULT_API_URL = "https://api.hubapi.com"
LIST_LIMIT, SEARCH_LIMIT, SEARCH_WINDOW = 100, 200, 10_000
UNSEARCHABLE = frozenset({"engagements"})
"""Objects HubSpot's CRM search does not serve: their changes are found by listing."""


class HubSpotError(RuntimeError):
    """HubSpot refused or failed a request; the message names the call and HubSpot's reason, never the token."""


class HubSpotAuthError(HubSpotError):
    """HubSpot rejected the access token (401) or its scopes (403)."""


def millis(timestamp: str) -> int:
    """Epoch milliseconds of one of HubSpot's ISO 8601 timestamps (``2026-01-05T09:00:01.000Z``)."""
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def modified_property(name: str) -> str:
    """The property search filters on: contacts keep the legacy ``lastmodifieddate``."""
    return "lastmodifieddate" if name == "contacts" else "hs_lastmodifieddate"


def document(record: dict[str, Any], op: str, row_id: int = -1) -> dict[str, Any]:
    """Estuary's document for one CRM record as the API returned it."""
    return {
        "id": int(record["id"]),
        "createdAt": record["createdAt"],
        "updatedAt": record["updatedAt"],
        "archived": bool(record.get("archived", False)),
        "properties": record.get("properties") or {},
        "_meta": {"op": op, "row_id": row_id},
    }


class HubSpotApi:
    """HubSpot's CRM API with a private-app (or OAuth) access token."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_API_URL,
        token_name: str = "the HubSpot access token",
        timeout_seconds: float = 30.0,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_name = token_name
        self._headers = {"Authorization": f"Bearer {token}"}
        redactor = Redactor()
        redactor.add([token])
        self._http = EstuaryHttp(timeout_seconds, policy or RetryPolicy(max_total_seconds=600.0), redactor)

    def close(self) -> None:
        """Release connections."""
        self._http.close()

    def call(self, method: str, path: str, *, params: Any = None, body: Any = None) -> dict[str, Any]:
        """One API call (retried when HubSpot asks to wait or fails transiently); its JSON answer."""
        try:
            response = self._http.request(method, self.base_url + path, params=params, json=body, headers=self._headers)
        except EstuaryAPIError as exc:
            raise self._error(exc) from None
        try:
            return response.json()
        except ValueError:
            raise HubSpotError(f"HubSpot {method} {path} answered with something other than JSON") from None

    def _error(self, exc: EstuaryAPIError) -> HubSpotError:
        what = f"HubSpot {exc.method} {exc.path} failed (HTTP {exc.status}): {exc.estuary_message}"
        if exc.status == 401:
            return HubSpotAuthError(f"{what}. HubSpot rejected {self.token_name}: set it to a valid private app token")
        if exc.status == 403:
            return HubSpotAuthError(f"{what}. {self.token_name} lacks a scope this capture needs")
        return HubSpotError(
            what if exc.status is not None else f"HubSpot {exc.method} {exc.path}: {exc.estuary_message}"
        )

    def property_names(self, name: str) -> list[str]:
        """Every property the portal defines for object ``name``."""
        return [p["name"] for p in self.call("GET", f"/crm/v3/properties/{name}")["results"]]

    def pages(self, name: str, properties: list[str], archived: bool = False) -> Iterator[list[dict[str, Any]]]:
        """The listing of object ``name``, one page at a time, following ``after`` cursors."""
        params: dict[str, Any] = {"limit": LIST_LIMIT, "archived": str(archived).lower()}
        if properties:
            params["properties"] = ",".join(properties)
        while True:
            answer = self.call("GET", f"/crm/v3/objects/{name}", params=params)
            yield answer.get("results", [])
            after = ((answer.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            params["after"] = after

    def modified_after(self, name: str, since_ms: int, properties: list[str]) -> Iterator[dict[str, Any]]:
        """Records of ``name`` modified after ``since_ms``, oldest first (search API, past its 10,000 window)."""
        prop, seen_at_edge, edge = modified_property(name), set(), since_ms
        operator = "GT"
        while True:
            started_at = edge
            request = {
                "filterGroups": [{"filters": [{"propertyName": prop, "operator": operator, "value": str(edge)}]}],
                "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
                "properties": properties,
                "limit": SEARCH_LIMIT,
            }
            restarted, offset = False, 0
            while not restarted:
                if offset:
                    request["after"] = str(offset)
                answer = self.call("POST", f"/crm/v3/objects/{name}/search", body=request)
                for record in answer.get("results", []):
                    at = millis(record["updatedAt"])
                    if at == edge and record["id"] in seen_at_edge:
                        continue
                    seen_at_edge = seen_at_edge if at == edge else set()
                    edge = at
                    seen_at_edge.add(record["id"])
                    yield record
                after = ((answer.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    return
                offset = int(after)
                restarted = offset + SEARCH_LIMIT > SEARCH_WINDOW
            if operator == "GTE" and edge == started_at:
                raise HubSpotError(f"more than {SEARCH_WINDOW} {name} share one modification time; cannot page past it")
            operator = "GTE"


@dataclass(frozen=True)
class CrmObject:
    """A bound HubSpot object and the collection its documents go to."""

    name: str
    collection: str


@dataclass
class Batch:
    """Documents read for one object, and the cursor they bring it to."""

    documents: list[dict[str, Any]]
    cursor: int


class HubSpotCapture:
    """Reads one capture's CRM objects as documents: a backfill, then changes after a cursor."""

    def __init__(self, api: HubSpotApi) -> None:
        self.api = api
        self._properties: dict[str, list[str]] = {}

    def properties(self, name: str) -> list[str]:
        """The property names requested for ``name`` (read once per capture)."""
        if name not in self._properties:
            self._properties[name] = self.api.property_names(name)
        return self._properties[name]

    def backfill(self, crm: CrmObject) -> Batch:
        """Every live record as a create; the cursor is the newest modification or archival time seen."""
        live: dict[int, dict[str, Any]] = {}
        for page in self.api.pages(crm.name, self.properties(crm.name)):
            live.update((int(r["id"]), r) for r in page)
        cursor = max((millis(r["updatedAt"]) for r in live.values()), default=0)
        gone = []
        for page in self.api.pages(crm.name, [], archived=True):
            for record in page:
                cursor = max(cursor, millis(record.get("archivedAt") or record["updatedAt"]))
                if int(record["id"]) in live:
                    gone.append(document(record, "d"))
                    del live[int(record["id"])]
        docs = [document(r, "c", row_id) for row_id, r in enumerate(live.values())]
        return Batch(docs + gone, cursor)

    def changes(self, crm: CrmObject, since_ms: int) -> Batch:
        """Records modified or archived after ``since_ms``: creates, updates and deletes."""
        cursor, docs = since_ms, []
        for record in self._modified(crm, since_ms):
            at = millis(record["updatedAt"])
            cursor = max(cursor, at)
            docs.append(document(record, "c" if millis(record["createdAt"]) > since_ms else "u"))
        for page in self.api.pages(crm.name, [], archived=True):
            for record in page:
                at = millis(record.get("archivedAt") or record["updatedAt"])
                if at > since_ms:
                    cursor = max(cursor, at)
                    docs.append(document(record, "d"))
        return Batch(docs, cursor)

    def _modified(self, crm: CrmObject, since_ms: int) -> Iterator[dict[str, Any]]:
        if crm.name not in UNSEARCHABLE:
            return self.api.modified_after(crm.name, since_ms, self.properties(crm.name))
        listed = (r for page in self.api.pages(crm.name, self.properties(crm.name)) for r in page)
        return iter(sorted((r for r in listed if millis(r["updatedAt"]) > since_ms), key=lambda r: r["updatedAt"]))

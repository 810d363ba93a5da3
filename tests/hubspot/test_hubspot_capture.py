"""The HubSpot CRM capture against a local server answering in HubSpot's v3 shapes."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest

from sophia_dagster.dataplane.hubspot import CrmObject, HubSpotApi, HubSpotAuthError, HubSpotCapture, millis
from sophia_dagster.estuary.http import RetryPolicy
from tests.fakes.hubspot_server import FakeHubSpot, hubspot_server

CONTACTS = CrmObject("contacts", "acme/hubspot/contacts")
DEALS = CrmObject("deals", "acme/hubspot/deals")


@pytest.fixture
def hubspot() -> FakeHubSpot:
    return FakeHubSpot()


@pytest.fixture
def url(hubspot: FakeHubSpot) -> Iterator[str]:
    with hubspot_server(hubspot) as base_url:
        yield base_url


def capture(hubspot: FakeHubSpot, url: str, token: str | None = None) -> HubSpotCapture:
    policy = RetryPolicy(max_attempts=4, initial_backoff_seconds=0.01, max_total_seconds=10)
    api = HubSpotApi(token or hubspot.token, url, token_name="HUBSPOT_ACCESS_TOKEN", policy=policy)
    return HubSpotCapture(api)


def test_backfill_follows_after_cursors_and_keeps_values(hubspot: FakeHubSpot, url: str) -> None:
    ids = [hubspot.create("contacts", email=f"p{i}@example.com", firstname=f"Ann {i}", phone=None) for i in range(250)]
    batch = capture(hubspot, url).backfill(CONTACTS)
    assert sorted(doc["id"] for doc in batch.documents) == ids
    pages = [r for r in hubspot.requests if r[1] == "/crm/v3/objects/contacts" and r[2].get("archived") == ["false"]]
    assert len(pages) == 3 and "after" in pages[1][2]
    first = next(doc for doc in batch.documents if doc["id"] == ids[0])
    assert first["properties"]["firstname"] == "Ann 0" and first["properties"]["phone"] is None
    assert first["_meta"] == {"op": "c", "row_id": 0} and first["archived"] is False
    assert batch.cursor == millis(hubspot.objects["contacts"][ids[-1]].as_json("contacts", None)["updatedAt"])


def test_incremental_reads_only_what_changed_after_the_cursor(hubspot: FakeHubSpot, url: str) -> None:
    kept, changed = hubspot.create("deals", dealname="Kept", amount="10.10"), hubspot.create("deals", dealname="Old")
    crm = capture(hubspot, url)
    cursor = crm.backfill(DEALS).cursor
    assert crm.changes(DEALS, cursor).documents == []
    hubspot.update("deals", changed, dealname="New", amount="123456789012345678.99")
    added = hubspot.create("deals", dealname="Added")
    batch = crm.changes(DEALS, cursor)
    assert [(d["id"], d["_meta"]["op"]) for d in batch.documents] == [(changed, "u"), (added, "c")]
    assert batch.documents[0]["properties"]["amount"] == "123456789012345678.99"
    assert kept not in {d["id"] for d in batch.documents} and batch.cursor > cursor
    searches = [r for r in hubspot.requests if r[1] == "/crm/v3/objects/deals/search"]
    assert searches[-1][2]["filterGroups"][0]["filters"][0] == {
        "propertyName": "hs_lastmodifieddate",
        "operator": "GT",
        "value": str(cursor),
    }


def test_archived_records_become_deletes(hubspot: FakeHubSpot, url: str) -> None:
    gone, stays = hubspot.create("contacts", email="gone@example.com"), hubspot.create("contacts", email="x@y.z")
    crm = capture(hubspot, url)
    cursor = crm.backfill(CONTACTS).cursor
    hubspot.archive("contacts", gone)
    batch = crm.changes(CONTACTS, cursor)
    assert [(d["id"], d["_meta"]["op"], d["archived"]) for d in batch.documents] == [(gone, "d", True)]
    assert crm.changes(CONTACTS, batch.cursor).documents == []
    assert stays in {d["id"] for d in crm.backfill(CONTACTS).documents if d["_meta"]["op"] == "c"}


def test_search_pages_past_the_10000_result_window(hubspot: FakeHubSpot, url: str, monkeypatch) -> None:
    monkeypatch.setattr("tests.fakes.hubspot_server.SEARCH_MAX_OFFSET", 450)
    monkeypatch.setattr("sophia_dagster.dataplane.hubspot.SEARCH_WINDOW", 450)
    ids = [hubspot.create("deals", dealname=str(i)) for i in range(700)]
    batch = capture(hubspot, url).changes(DEALS, 0)
    assert [d["id"] for d in batch.documents] == ids


def test_429_waits_for_retry_after(hubspot: FakeHubSpot, url: str) -> None:
    hubspot.create("deals", dealname="One")
    hubspot.throttle(2, 0.4)
    started = time.monotonic()
    batch = capture(hubspot, url).backfill(DEALS)
    assert time.monotonic() - started >= 0.8
    assert [d["properties"]["dealname"] for d in batch.documents] == ["One"]
    assert hubspot.requests[0][1] == hubspot.requests[2][1] == "/crm/v3/properties/deals"


def test_401_is_one_clear_error_without_the_token(hubspot: FakeHubSpot, url: str) -> None:
    wrong = f"wrong-{secrets.token_hex(8)}"
    with pytest.raises(HubSpotAuthError) as raised:
        capture(hubspot, url, token=wrong).backfill(CONTACTS)
    message = str(raised.value)
    assert "HTTP 401" in message and "HUBSPOT_ACCESS_TOKEN" in message and "Authentication credentials" in message
    assert wrong not in message and len(hubspot.requests) == 1


def test_403_names_the_missing_scope_problem(hubspot: FakeHubSpot, url: str) -> None:
    hubspot.forbidden.add("deals")
    with pytest.raises(HubSpotAuthError, match="HTTP 403.*granted all required scopes.*HUBSPOT_ACCESS_TOKEN lacks"):
        capture(hubspot, url).backfill(DEALS)

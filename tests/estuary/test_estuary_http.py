"""Retries against the fake: what is retried, how long it waits, and what is raised at once."""

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sophia_dagster.estuary.errors import EstuaryAPIError, EstuaryError
from sophia_dagster.estuary.http import EstuaryHttp, Redactor, RetryPolicy, parse_retry_after
from sophia_dagster.estuary.workspace import EstuaryWorkspace
from tests.estuary.conftest import make_workspace
from tests.fakes.estuary_server import FakeEstuary, http_date_in

STATUS = "/api/v1/catalog/status"


@pytest.fixture
def live_workspace(fake: FakeEstuary) -> EstuaryWorkspace:
    """A workspace whose token is already exchanged, with one live capture."""
    fake.add_live("acme/src", "capture", {"endpoint": {}, "bindings": []})
    ws = make_workspace(fake)
    ws.client.tokens.access_token()
    fake.requests.clear()
    return ws


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:05 GMT", now=now) == 5.0
    assert parse_retry_after("Wed, 31 Dec 2025 23:59:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("retry_after", ["0.4", "http-date"])
def test_429_waits_as_long_as_retry_after_says(
    fake: FakeEstuary, live_workspace: EstuaryWorkspace, retry_after: str
) -> None:
    header = http_date_in(1.2) if retry_after == "http-date" else retry_after
    fake.fail_next("429", retry_after=header, path=STATUS)
    started = time.monotonic()
    (status,) = live_workspace.status(["acme/src"])
    waited = time.monotonic() - started
    assert status.status == "ok"
    assert fake.count("GET", STATUS) == 2
    assert waited >= (0.35 if retry_after == "0.4" else 0.2)  # an HTTP date has 1 s resolution
    assert waited < 3


def test_agent_redirect_is_followed_after_its_retry_after(fake: FakeEstuary, live_workspace: EstuaryWorkspace) -> None:
    fake.fail_next("307", retry_after="0.3", path=STATUS)
    started = time.monotonic()
    assert [s.status for s in live_workspace.status(["acme/src"])] == ["ok"]
    assert time.monotonic() - started >= 0.25
    (redirected, followed) = [r for r in fake.requests if r.path == STATUS]
    assert (redirected.status, followed.status) == (307, 200) and followed.query == redirected.query


def test_redirect_to_another_host_is_refused_so_the_token_stays_with_estuary() -> None:
    sent: list[httpx.Request] = []

    def agent(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(307, headers={"Location": "https://collector.example/steal", "Retry-After": "0"})

    http = EstuaryHttp(2.0, RetryPolicy(), Redactor(), transport=httpx.MockTransport(agent))
    with pytest.raises(EstuaryAPIError) as caught:
        http.request("GET", f"https://api.estuary.dev{STATUS}", headers={"Authorization": "Bearer agent-jwt"})
    assert [r.url.host for r in sent] == ["api.estuary.dev"]
    assert caught.value.status == 307 and "collector.example" in str(caught.value)


def test_a_request_that_cannot_be_sent_is_not_retried() -> None:
    http = EstuaryHttp(2.0, RetryPolicy(initial_backoff_seconds=2.0), Redactor())
    started = time.monotonic()
    with pytest.raises(EstuaryAPIError, match="request not sent: UnsupportedProtocol"):
        http.request("GET", "ftp://api.estuary.dev/api/v1/catalog/status")
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("kind", ["500", "503", "drop", "slow"])
def test_transient_failures_are_retried(fake: FakeEstuary, live_workspace: EstuaryWorkspace, kind: str) -> None:
    fake.slow_seconds = 1.0
    ws = make_workspace(fake, request_timeout_seconds=0.3) if kind == "slow" else live_workspace
    fake.fail_next(kind, count=2, path=STATUS)
    assert [s.status for s in ws.status(["acme/src"])] == ["ok"]
    assert fake.count("GET", STATUS) == 3


@pytest.mark.parametrize(
    ("setup", "status", "message"),
    [
        (lambda f: None, 404, "no such catalog spec: acme/missing"),
        (lambda f: f.forbidden.add("acme/missing"), 403, "missing read capability for acme/missing"),
    ],
)
def test_other_4xx_are_raised_after_one_request(
    fake: FakeEstuary, live_workspace: EstuaryWorkspace, setup, status: int, message: str
) -> None:
    setup(fake)
    with pytest.raises(EstuaryAPIError) as caught:
        live_workspace.status(["acme/missing"])
    assert fake.count("GET", STATUS) == 1
    assert caught.value.status == status
    assert f"GET {STATUS}" in str(caught.value) and message in str(caught.value)
    assert "acme/missing" in str(caught.value) and "name=" not in str(caught.value)


def test_bad_refresh_secret_is_400_p0001_after_one_request(fake: FakeEstuary) -> None:
    good = fake.issue_refresh_token()
    token_id = next(iter(fake.refresh_tokens))
    fake.refresh_tokens[token_id]["secret"] = "rotated-elsewhere"
    ws = make_workspace(fake, api_token=good)
    with pytest.raises(EstuaryAPIError) as caught:
        ws.status(["acme/x"])
    assert fake.count(path="generate_access_token") == 1 and len(fake.requests) == 1
    assert (caught.value.status, caught.value.code) == (400, "P0001")
    assert "POST /rest/v1/rpc/generate_access_token" in str(caught.value) and "invalid secret provided" in str(
        caught.value
    )
    assert good not in str(caught.value)


def test_persistent_503_gives_up_after_max_attempts_naming_the_endpoint(
    fake: FakeEstuary, live_workspace: EstuaryWorkspace
) -> None:
    ws = make_workspace(fake, max_attempts=3)
    fake.fail_next("503", count=10, path=STATUS)
    with pytest.raises(EstuaryAPIError) as caught:
        ws.status(["acme/src"])
    assert fake.count("GET", STATUS) == 3
    assert caught.value.status == 503 and "gave up after 3 attempts" in str(caught.value)
    assert "upstream unavailable" in str(caught.value)


def test_retry_after_beyond_the_time_budget_is_not_slept(fake: FakeEstuary, live_workspace: EstuaryWorkspace) -> None:
    ws = make_workspace(fake, max_retry_seconds=1.0)
    fake.fail_next("429", retry_after="120", path=STATUS)
    started = time.monotonic()
    with pytest.raises(EstuaryAPIError) as caught:
        ws.status(["acme/src"])
    assert time.monotonic() - started < 1.0
    assert caught.value.status == 429 and fake.count("GET", STATUS) == 1


def test_expired_access_token_is_refreshed_before_use(fake: FakeEstuary) -> None:
    fake.token_ttl = 61.5  # under flowctl's 60 s margin after ~1.5 s
    fake.add_live("acme/src", "capture", {"endpoint": {}})
    ws = make_workspace(fake)
    ws.status(["acme/src"])
    ws.status(["acme/src"])
    assert fake.count(path="generate_access_token") == 1
    time.sleep(1.6)
    ws.status(["acme/src"])
    assert fake.count(path="generate_access_token") == 2
    assert fake.count("GET", STATUS) == 3 and all(r.status == 200 for r in fake.requests)


def test_a_retry_after_the_access_token_expired_sends_a_fresh_one(fake: FakeEstuary) -> None:
    fake.token_ttl = 1.0  # the token sent first has expired by the time the retry goes out
    fake.add_live("acme/src", "capture", {"endpoint": {}})
    ws = make_workspace(fake)
    fake.fail_next("429", retry_after="1.2", path=STATUS)
    assert ws.status(["acme/src"])[0].status == "ok"
    (limited, retried) = [r for r in fake.requests if r.path == STATUS]
    assert (limited.status, retried.status) == (429, 200)
    assert limited.headers["authorization"] != retried.headers["authorization"]


def test_single_use_refresh_tokens_rotate(fake: FakeEstuary) -> None:
    fake.token_ttl = 1.0  # every call needs a new access token
    fake.add_live("acme/src", "capture", {"endpoint": {}})
    ws = make_workspace(fake, api_token=fake.issue_refresh_token(single_use=True))
    for _ in range(3):
        assert ws.status(["acme/src"])[0].status == "ok"
    exchanges = [r for r in fake.requests if r.path.endswith("generate_access_token")]
    assert len(exchanges) == 3 and all(r.status == 200 for r in exchanges)
    assert len({r.body for r in exchanges}) == 3  # a new secret each time


def test_threads_sharing_a_single_use_refresh_token_exchange_it_once(fake: FakeEstuary) -> None:
    fake.latency_seconds = 0.2
    client = make_workspace(fake, api_token=fake.issue_refresh_token(single_use=True)).client
    with ThreadPoolExecutor(max_workers=4) as pool:
        tokens = list(pool.map(lambda _: client.tokens.access_token(), range(4)))
    assert len(set(tokens)) == 1
    assert fake.count(path="generate_access_token") == 1


def test_a_ready_access_jwt_is_used_without_an_exchange(fake: FakeEstuary) -> None:
    fake.add_live("acme/src", "capture", {"endpoint": {}})
    jwt = fake.issue_access_token()
    ws = make_workspace(fake, api_token=jwt)
    assert ws.status(["acme/src"])[0].status == "ok"
    assert fake.count(path="generate_access_token") == 0
    assert fake.requests[0].headers["authorization"] == f"Bearer {jwt}"


def test_expired_ready_jwt_without_refresh_token_is_a_clear_error(fake: FakeEstuary) -> None:
    payload = base64.urlsafe_b64encode(
        json.dumps({"exp": int((datetime.now(UTC) - timedelta(hours=1)).timestamp())}).encode()
    ).decode()
    ws = make_workspace(fake, api_token=f"e30.{payload}.sig")
    with pytest.raises(EstuaryError, match="expired and no refresh token"):
        ws.status(["acme/src"])
    assert fake.requests == []

"""AsyncEstuaryClient against the fake control plane: many calls at once, the sync client's answers and rules."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sophia_dagster.estuary.async_client import AsyncEstuaryClient
from sophia_dagster.estuary.client import EstuaryClient
from sophia_dagster.estuary.errors import EstuaryAPIError
from sophia_dagster.estuary.http import RetryPolicy
from tests.fakes.estuary_server import FakeEstuary

TASKS = [f"acme/task-{n:04d}" for n in range(250)]
FAST = RetryPolicy(max_attempts=5, initial_backoff_seconds=0.01, max_backoff_seconds=0.05, max_total_seconds=10)


class InFlight(httpx.AsyncHTTPTransport):
    """The real transport, counting how many requests are on the wire at once."""

    def __init__(self) -> None:
        super().__init__()
        self.now = self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            return await super().handle_async_request(request)
        finally:
            self.now -= 1


@pytest.fixture
def populated(fake: FakeEstuary) -> FakeEstuary:
    """250 live captures, each with an hourly stats row."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for name in TASKS:
        fake.add_live(name, "capture", {"endpoint": {"connector": {"image": "x", "config": {}}}, "bindings": []})
        fake.add_stats(name, hour, docs_written_by_me=7, bytes_written_by_me=70)
    return fake


def make(fake: FakeEstuary, token: str, **kwargs: object) -> AsyncEstuaryClient:
    urls = fake.urls()
    return AsyncEstuaryClient(
        token, pg_url=urls["pg_url"], agent_url=urls["agent_url"], anon_key=urls["anon_key"], retry=FAST, **kwargs
    )


def test_many_concurrent_calls_give_the_sync_clients_answers(populated: FakeEstuary) -> None:
    token, since = populated.issue_refresh_token(), datetime.now(UTC) - timedelta(hours=1)
    urls = populated.urls()
    with EstuaryClient(token, data_plane_name="ops/dp", retry=FAST, **urls) as sync:
        expected = (sync.status(TASKS), sync.stats(TASKS, since), sync.live_specs(TASKS))
    populated.requests.clear()

    async def scenario() -> list:
        async with make(populated, token) as estuary:
            calls = [call for _ in range(10) for call in (estuary.status, estuary.stats, estuary.live_specs)]
            return await asyncio.gather(
                *(call(TASKS, since) if call == estuary.stats else call(TASKS) for call in calls)
            )

    answers = asyncio.run(scenario())
    for n, answer in enumerate(answers):
        assert answer == expected[n % 3]
    assert populated.count("POST", "/rpc/generate_access_token") == 1  # 30 first calls, one exchange
    assert populated.count("GET", "/api/v1/catalog/status") == 10 * 3  # ceil(250/100) per call


def test_requests_overlap_on_the_wire(populated: FakeEstuary) -> None:
    populated.latency_seconds = 0.3
    transport = InFlight()

    async def scenario() -> None:
        async with make(populated, populated.issue_access_token(), transport=transport) as estuary:
            await asyncio.gather(*(estuary.status(TASKS[n : n + 1]) for n in range(10)))

    asyncio.run(scenario())
    assert transport.peak >= 5


def test_retries_and_errors_follow_the_shared_rules(populated: FakeEstuary) -> None:
    token = populated.issue_refresh_token()
    populated.fail_next("503", count=2, path="/api/v1/catalog/status")

    async def scenario() -> None:
        async with make(populated, token) as estuary:
            (status,) = await estuary.status(TASKS[:1])
            assert status.catalog_name == TASKS[0]
            with pytest.raises(EstuaryAPIError) as caught:
                await estuary.status(["acme/not-there"])
            with pytest.raises(ValueError, match="stats grain 'weekly'"):
                await estuary.stats(TASKS, datetime.now(UTC), grain="weekly")
        assert token not in str(caught.value)

    asyncio.run(scenario())
    assert populated.count("GET", "/api/v1/catalog/status") >= 3


def test_exit_closes_the_connection_pool(populated: FakeEstuary) -> None:
    async def scenario() -> AsyncEstuaryClient:
        async with make(populated, populated.issue_access_token()) as estuary:
            await estuary.status(TASKS[:3])
            client = estuary._client
        assert client is not None and client.is_closed
        return estuary

    estuary = asyncio.run(scenario())
    with pytest.raises(RuntimeError, match="inside `async with`"):
        asyncio.run(estuary.status(TASKS[:1]))

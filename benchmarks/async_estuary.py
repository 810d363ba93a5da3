"""Benchmark: status + stats of 1,000 tasks, AsyncEstuaryClient vs. the sync EstuaryClient, same run.

Against the fake control plane with a fixed latency per request (a network round trip). Both clients send
the same ceil(1000/100) = 10 requests per call; the async one sends a call's batches concurrently, and
application code can run several calls at once. Run: ``.venv/bin/python benchmarks/async_estuary.py``.
"""

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sophia_dagster.estuary.async_client import AsyncEstuaryClient
from sophia_dagster.estuary.client import EstuaryClient
from tests.fakes.estuary_server import FakeEstuary

TASKS = [f"bench/task-{n:04d}" for n in range(1000)]
LATENCY_SECONDS = 0.05
ROUNDS = 3


def populate(fake: FakeEstuary) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for name in TASKS:
        fake.add_live(name, "capture", {"endpoint": {"connector": {"image": "x", "config": {}}}, "bindings": []})
        fake.add_stats(name, hour, docs_written_by_me=1, bytes_written_by_me=10)


def main() -> None:
    with FakeEstuary() as fake:
        populate(fake)
        fake.latency_seconds = LATENCY_SECONDS
        token, since, urls = fake.issue_access_token(), datetime.now(UTC) - timedelta(hours=1), fake.urls()

        with EstuaryClient(token, data_plane_name="ops/dp", **urls) as sync:
            started = time.perf_counter()
            for _ in range(ROUNDS):
                expected = (sync.status(TASKS), sync.stats(TASKS, since))
            sync_seconds = (time.perf_counter() - started) / ROUNDS

        async def rounds() -> float:
            async with AsyncEstuaryClient(
                token, pg_url=urls["pg_url"], agent_url=urls["agent_url"], anon_key=urls["anon_key"]
            ) as estuary:
                started = time.perf_counter()
                for _ in range(ROUNDS):
                    answer = await asyncio.gather(estuary.status(TASKS), estuary.stats(TASKS, since))
                    assert tuple(answer) == expected, "the async client must answer exactly as the sync one"
                return (time.perf_counter() - started) / ROUNDS

        async_seconds = asyncio.run(rounds())
    print(f"status + stats of {len(TASKS)} tasks, {LATENCY_SECONDS * 1000:.0f} ms per request, mean of {ROUNDS}:")
    print(f"  sync EstuaryClient (baseline): {sync_seconds:.3f} s")
    print(f"  AsyncEstuaryClient:            {async_seconds:.3f} s")
    print(f"  ratio async/sync: {async_seconds / sync_seconds:.2f}x ({sync_seconds / async_seconds:.1f}x faster)")


if __name__ == "__main__":
    main()

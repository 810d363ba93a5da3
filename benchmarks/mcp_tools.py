"""Latency of the MCP server's read tools over stdio, against the same work done in-process, in one run.

Subject: 100 calls of each read tool through the real ``sophia-mcp`` (stdio, the official SDK's client):
``list_pipelines``, ``show_pipeline`` and ``conversation_context``. Baseline: the same tool functions called
directly in this process on the same platform (no MCP framing, no JSON, no pipe). Prints p50/p95 of both
and the ratio of the p50s. Runs in a throwaway state directory on the embedded engines (local).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mcp import Client, StdioServerParameters

from sophia_dagster.config import PLATFORM_CATALOG_DIR, load_settings
from sophia_dagster.embedded.postgres import stop_embedded_postgres
from sophia_dagster.mcp.cli import platform_for
from sophia_dagster.mcp.tools import pipelines
from sophia_dagster.warehouse.embedded import stop_embedded_warehouse

CALLS = 100
TOOLS = {
    "list_pipelines": {},
    "show_pipeline": {"name": "sophia/postgres-cdc"},
    "conversation_context": {"user_id": "bench-user"},
}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


async def over_mcp(env: dict[str, str], cwd: Path) -> dict[str, list[float]]:
    server = StdioServerParameters(command=str(Path(sys.executable).parent / "sophia-mcp"), env=env, cwd=str(cwd))
    timings: dict[str, list[float]] = {}
    async with Client(server) as client:
        for name, arguments in TOOLS.items():
            await client.call_tool(name, arguments)
            timings[name] = []
            for _ in range(CALLS):
                started = time.perf_counter()
                result = await client.call_tool(name, arguments)
                timings[name].append(time.perf_counter() - started)
                assert not result.is_error, result.content
    return timings


def in_process(calls: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    for name, call in calls.items():
        call()
        timings[name] = []
        for _ in range(CALLS):
            started = time.perf_counter()
            call()
            timings[name].append(time.perf_counter() - started)
    return timings


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="mcp-bench-"))
    state = root / "state"
    catalog = root / "catalog"
    shutil.copytree(PLATFORM_CATALOG_DIR, catalog, ignore=shutil.ignore_patterns("*.py", "*.yaml.bak", "__pycache__"))
    env = {**os.environ, "STATE_DIR": str(state), "MCP_CATALOG_DIR": str(catalog)}
    env.pop("ENVIRONMENT", None)
    try:
        os.environ.update(STATE_DIR=str(state), MCP_CATALOG_DIR=str(catalog))
        platform = platform_for(load_settings(cwd=root).settings, allow_writes=False)
        direct = in_process(
            {
                "list_pipelines": lambda: pipelines.list_pipelines(platform, None),
                "show_pipeline": lambda: pipelines.show_pipeline(platform, "sophia/postgres-cdc"),
                "conversation_context": lambda: platform.memory().get_conversation_context("bench-user", 20),
            }
        )
        mcp = asyncio.run(over_mcp(env, root))
        print(f"{CALLS} calls per tool; p50 / p95 in ms")
        print(f"{'tool':<22} {'over MCP (stdio)':>20} {'in-process':>16} {'p50 ratio':>10}")
        for name in TOOLS:
            (m50, m95), (d50, d95) = percentiles(mcp[name]), percentiles(direct[name])
            print(f"{name:<22} {m50:>9.1f} / {m95:>7.1f} {d50:>7.1f} / {d95:>6.1f} {m50 / d50:>9.2f}x")
    finally:
        stop_embedded_warehouse(state)
        stop_embedded_postgres(state)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

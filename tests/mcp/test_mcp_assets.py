"""The asset and health tools against a real Dagster webserver (a small code location), through GraphQL."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from tests.mcp.conftest import BIN, McpWorld, free_port, text_of, wait_for_port

REPO = Path(__file__).resolve().parents[2]
INSTANCE = """telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""


@pytest.fixture
def webserver(mcp_world: McpWorld, tmp_path: Path) -> Iterator[str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE)
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-m", "tests.mcp.tiny_defs", "-h", "127.0.0.1", "-p", str(port)],
        env={**mcp_world.env, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, seconds=180)
        mcp_world.env["DAGSTER_UI_URL"] = f"http://127.0.0.1:{port}"
        yield mcp_world.env["DAGSTER_UI_URL"]
    finally:
        process.terminate()
        process.wait(60)


async def _until_done(client: Client, run_id: str, seconds: float = 180) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        state = (await client.call_tool("run_status", {"run_id": run_id})).structured_content
        if state["status"] in ("SUCCESS", "FAILURE", "CANCELED") or time.monotonic() > deadline:
            return state
        await _sleep(0.5)


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


def test_assets_materialize_and_runs_report_their_errors(mcp_world: McpWorld, webserver: str) -> None:
    async def script(client: Client) -> dict:
        before = (await client.call_tool("list_assets", {"prefix": "tiny/"})).structured_content["result"]
        good = await client.call_tool("materialize_assets", {"selection": ["tiny/numbers", "tiny/total"]})
        assert not good.is_error, text_of(good)
        bad = (await client.call_tool("materialize_assets", {"selection": ["tiny/broken"]})).structured_content
        unknown = await client.call_tool("materialize_assets", {"selection": ["tiny/nope"]})
        missing_run = await client.call_tool("run_status", {"run_id": "00000000-0000-0000-0000-000000000000"})
        health = await client.call_tool("run_health_checks", {"selection": ["tiny/total"]})
        return {
            "before": before,
            "good": await _until_done(client, good.structured_content["run_id"]),
            "bad": await _until_done(client, bad["run_id"]),
            "health": await _until_done(client, health.structured_content["run_id"]),
            "unknown": text_of(unknown),
            "missing_run": text_of(missing_run),
            "after": (await client.call_tool("list_assets", {"prefix": "tiny/"})).structured_content["result"],
        }

    seen = mcp_world.session(script, "--allow-writes")
    before = {a["key"]: a for a in seen["before"]}
    assert set(before) == {"tiny/numbers", "tiny/total", "tiny/broken"}
    assert before["tiny/total"]["last_materialized"] is None
    assert before["tiny/total"]["checks"] == [{"name": "total_is_positive", "blocking": True, "status": None}]

    assert seen["good"]["status"] == "SUCCESS" and seen["good"]["errors"] == []
    assert sorted(seen["good"]["assets"]) == ["tiny/numbers", "tiny/total"]
    assert seen["bad"]["status"] == "FAILURE"
    assert any("the source table tiny.broken is missing" in error for error in seen["bad"]["errors"])
    assert seen["health"]["status"] == "SUCCESS" and seen["health"]["job"] == "governance_daily"
    assert "unknown asset keys: tiny/nope" in seen["unknown"]
    assert "could not be found" in seen["missing_run"]

    after = {a["key"]: a for a in seen["after"]}
    assert after["tiny/total"]["last_materialized"] and after["tiny/total"]["checks"][0]["status"] == "SUCCEEDED"
    assert after["tiny/broken"]["last_materialized"] is None
    tools = [r["tool"] for r in map(__import__("json").loads, mcp_world.audit.read_text().splitlines())]
    assert tools == ["materialize_assets", "materialize_assets", "materialize_assets", "run_health_checks"]

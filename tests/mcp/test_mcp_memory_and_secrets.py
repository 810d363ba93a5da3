"""Memory tools through UnifiedMemoryService, the health report, and a canary secret found nowhere."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from mcp import Client

from sophia_dagster.config import load_settings
from sophia_dagster.memory.resources import memory_service
from tests.mcp.conftest import McpWorld, text_of


def test_memory_tools_answer_from_the_tiers(mcp_world: McpWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in mcp_world.env.items():
        monkeypatch.setenv(name, value)
    service = memory_service(load_settings(cwd=mcp_world.root).settings)
    user = f"mcp-{uuid.uuid4().hex[:8]}"
    service.add_knowledge("Renewal pricing for Acme Robotics was agreed at 12% discount", {"kind": "deal"}, "acme")
    service.add_knowledge("The office coffee machine is broken again", {"kind": "chatter"}, "coffee")
    for text in ("hello", "what is the Acme renewal price?"):
        service.add_conversation_memory(user, text)

    async def script(client: Client):
        return (
            (await client.call_tool("search_knowledge", {"query": "Acme Robotics renewal pricing", "limit": 2})),
            (await client.call_tool("conversation_context", {"user_id": user})),
            (await client.call_tool("search_knowledge", {"query": "x", "limit": 0})),
        )

    search, context, bad_limit = mcp_world.session(script)
    hits = search.structured_content["hits"]
    assert hits[0]["id"] == "acme" and hits[0]["score"] > hits[1]["score"]
    assert search.structured_content["degraded"] is False
    assert [m["content"] for m in context.structured_content["messages"]] == [
        "hello",
        "what is the Acme renewal price?",
    ]
    assert bad_limit.is_error and "limit" in text_of(bad_limit)


def test_the_latest_health_report_is_served(mcp_world: McpWorld) -> None:
    from sophia_dagster.governance.report import report_path

    async def script(client: Client):
        return text_of(await client.call_tool("latest_health_report", {}))

    assert "no health report yet" in mcp_world.session(script)
    path = report_path(Path(mcp_world.env["STATE_DIR"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Health report\n\nparity: ok\n")

    async def read(client: Client):
        return (await client.call_tool("latest_health_report", {})).structured_content["markdown"]

    assert mcp_world.session(read) == "# Health report\n\nparity: ok\n"


def test_a_canary_secret_never_leaves_the_server(mcp_world: McpWorld) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    secrets = {
        "SNOWFLAKE_PAT": canary,
        "ESTUARY_API_TOKEN": canary,
        "POSTGRES_DSN": f"postgresql://sophia:{canary}@127.0.0.1:1/sophia",
        "MCP_HTTP_TOKEN": canary,
    }
    mcp_world.env.update(secrets)

    async def script(client: Client):
        calls = [
            ("list_pipelines", {}),
            ("show_pipeline", {"name": "sophia/postgres-cdc"}),
            ("create_postgres_capture", {"name": "sophia/canary", "tables": ["deals"]}),
            ("pause_pipeline", {"name": "sophia/postgres-cdc"}),
            ("search_knowledge", {"query": "deals"}),
            ("conversation_context", {"user_id": "u1"}),
            ("list_assets", {}),
            ("check_environment", {}),
        ]
        return [await client.call_tool(name, arguments) for name, arguments in calls]

    results = mcp_world.session(script, "--allow-writes")
    shown = json.dumps([r.model_dump(mode="json") for r in results])
    assert '"password": "***"' in shown
    assert results[2].is_error and "127.0.0.1" in text_of(results[2])
    environment = results[-1].structured_content
    assert environment["can_run"] is False and "postgresql" in environment["verdict"]
    for text in (shown, mcp_world.audit.read_text(), mcp_world.stderr.read_text()):
        assert canary not in text

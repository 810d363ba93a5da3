"""The MCP server over stdio: its tools, the seed's four sentences, safety and errors."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from mcp import Client

from sophia_dagster.embedded.postgres import ensure_embedded_postgres
from sophia_dagster.estuary.catalog import load_catalog
from sophia_dagster.dataplane.runtime import LocalDataPlane
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource
from tests.mcp.conftest import McpWorld, text_of

READ_TOOLS = {
    "list_pipelines",
    "show_pipeline",
    "list_assets",
    "run_status",
    "latest_health_report",
    "check_environment",
    "search_knowledge",
    "conversation_context",
}


def test_every_tool_is_annotated_typed_and_read_only_unless_it_writes(mcp_world: McpWorld) -> None:
    async def script(client: Client):
        return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in mcp_world.session(script)}
    assert READ_TOOLS < set(tools)
    assert {"create_postgres_capture", "create_snowflake_materialization", "pause_pipeline", "resume_pipeline"} < set(
        tools
    )
    for name, tool in tools.items():
        hints = tool.annotations
        assert None not in (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint), name
        assert hints.read_only_hint is (name in READ_TOOLS), name
        assert tool.output_schema and tool.output_schema["type"] == "object", name
        assert "ctx" not in tool.input_schema.get("properties", {}), name
        assert "confirmation" not in tool.input_schema.get("properties", {}), name


def test_groups_are_switched_off_in_settings(mcp_world: McpWorld) -> None:
    async def script(client: Client):
        return {tool.name for tool in (await client.list_tools()).tools}

    names = mcp_world.session(script, env={"MCP_TOOL_GROUPS": "memory"})
    assert names == {"search_knowledge", "conversation_context"}


def _source_tables(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        names = conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indisprimary AND n.nspname = 'public'"
        ).fetchall()
        return {name: conn.execute(f'SELECT count(*) FROM public."{name}"').fetchone()[0] for (name,) in names}


def test_the_seed_sentences(mcp_world: McpWorld) -> None:
    """List captures; create PostgreSQL CDC for the sophia database; materialize it to Snowflake; show health."""
    created: dict[str, dict] = {}

    async def script(client: Client):
        captures = (await client.call_tool("list_pipelines", {"kind": "capture"})).structured_content["result"]
        capture = await client.call_tool("create_postgres_capture", {"name": "sophia/production-cdc"})
        assert not capture.is_error, text_of(capture)
        created["capture"] = capture.structured_content
        collections = capture.structured_content["collections"]
        materialization = await client.call_tool(
            "create_snowflake_materialization",
            {"name": "sophia/realtime-analytics", "collections": collections, "publish": True},
        )
        assert not materialization.is_error, text_of(materialization)
        created["materialization"] = materialization.structured_content
        return captures

    original = set(load_catalog(mcp_world.catalog_dir).captures)
    captures = mcp_world.session(script, "--allow-writes")
    assert {c["name"] for c in captures} == original == {"sophia/hubspot", "sophia/postgres-cdc"}
    assert all(c["status"] in ("ok", "warning", "error", "taskDisabled") for c in captures)

    state_dir = Path(mcp_world.env["STATE_DIR"])
    source = _source_tables(ensure_embedded_postgres(state_dir))
    catalog = load_catalog(mcp_world.catalog_dir)
    assert created["capture"]["collections"] == [f"sophia/production-cdc/{t}" for t in sorted(source)]
    assert catalog.collections_of("sophia/production-cdc") == created["capture"]["collections"]
    assert created["materialization"]["published"] and created["materialization"]["pub_id"]
    assert len(mcp_world.elicited) == 2

    plane = LocalDataPlane(
        state_dir=str(state_dir),
        catalog_path=str(mcp_world.catalog_dir),
        warehouse_database="SOPHIA",
        warehouse_schema="RAW",
    )
    plane.run("sophia/realtime-analytics")
    with embedded_snowflake_resource(state_dir).get_connection() as conn:
        cursor = conn.cursor()
        for table, count in source.items():
            cursor.execute(f"SELECT count(*) FROM SOPHIA.RAW.{table}")
            assert cursor.fetchone()[0] == count, table

    async def health(client: Client):
        return (await client.call_tool("list_pipelines", {})).structured_content["result"]

    statuses = {p["name"]: p for p in mcp_world.session(health)}
    assert statuses["sophia/realtime-analytics"]["status"] == "ok"
    assert statuses["sophia/realtime-analytics"]["docs_last_24h"] >= sum(source.values())
    assert statuses["sophia/hubspot"]["status"] == "warning"


def test_read_only_server_refuses_writes_and_audits_the_refusal(mcp_world: McpWorld) -> None:
    async def script(client: Client):
        return await client.call_tool("pause_pipeline", {"name": "sophia/postgres-cdc"})

    result = mcp_world.session(script)
    assert result.is_error and "writes are disabled" in text_of(result)
    (record,) = [json.loads(line) for line in mcp_world.audit.read_text().splitlines()]
    assert record["tool"] == "pause_pipeline" and record["outcome"] == "refused"
    assert record["arguments"] == {"name": "sophia/postgres-cdc"} and "via" in record["who"]
    assert mcp_world.elicited == []


def test_a_declined_write_does_nothing(mcp_world: McpWorld) -> None:
    before = sorted(p.name for p in mcp_world.catalog_dir.iterdir())

    async def script(client: Client):
        return await client.call_tool("create_postgres_capture", {"name": "sophia/declined", "tables": ["deals"]})

    result = mcp_world.session(script, "--allow-writes", answer="decline")
    assert result.is_error and "did not confirm" in text_of(result)
    assert sorted(p.name for p in mcp_world.catalog_dir.iterdir()) == before
    assert json.loads(mcp_world.audit.read_text().splitlines()[-1])["outcome"] == "declined"


def test_errors_come_back_as_tool_errors(mcp_world: McpWorld) -> None:
    before = sorted(p.name for p in mcp_world.catalog_dir.iterdir())

    async def script(client: Client):
        return {
            "unknown task": await client.call_tool("show_pipeline", {"name": "sophia/nope"}),
            "bad table": await client.call_tool(
                "create_postgres_capture", {"name": "sophia/bad", "tables": ["deals", "no_such_table"]}
            ),
            "bad name": await client.call_tool("create_postgres_capture", {"name": "Sophia AI!", "tables": ["deals"]}),
            "taken": await client.call_tool("create_postgres_capture", {"name": "sophia/postgres-cdc"}),
            "dagster down": await client.call_tool("list_assets", {}),
            "pause unknown": await client.call_tool("pause_pipeline", {"name": "sophia/nope"}),
            "still alive": await client.call_tool("list_pipelines", {}),
        }

    results = mcp_world.session(script, "--allow-writes")
    messages = {case: text_of(result) for case, result in results.items()}
    assert all(results[case].is_error for case in results if case != "still alive"), messages
    assert "unknown pipeline 'sophia/nope'" in messages["unknown task"]
    assert "no_such_table" in messages["bad table"]
    assert "Sophia AI!" in messages["bad name"]
    assert "already exists" in messages["taken"]
    assert (
        "Dagster webserver" in messages["dagster down"] and mcp_world.env["DAGSTER_UI_URL"] in messages["dagster down"]
    )
    assert "unknown pipeline" in messages["pause unknown"]
    assert not results["still alive"].is_error
    assert sorted(p.name for p in mcp_world.catalog_dir.iterdir()) == before

"""``sophia-mcp --http``: streamable HTTP on loopback, only with the bearer token."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.mcp.conftest import BIN, McpWorld, free_port, wait_for_port

TOKEN = secrets.token_urlsafe(24)


@pytest.fixture
def http_server(mcp_world: McpWorld) -> Iterator[str]:
    port = free_port()
    env = {**mcp_world.env, "MCP_HTTP_TOKEN": TOKEN}
    process = subprocess.Popen(
        [str(BIN / "sophia-mcp"), "--http", "--port", str(port)],
        env=env,
        cwd=mcp_world.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, process, seconds=120)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
        assert TOKEN not in stderr


async def _tools(url: str, token: str | None) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            listed = [tool.name for tool in (await client.list_tools()).tools]
            result = await client.call_tool("list_pipelines", {"kind": "materialization"})
            assert [p["name"] for p in result.structured_content["result"]] == ["sophia/snowflake"]
            return listed


def test_with_the_token_the_tools_answer(http_server: str) -> None:
    assert "list_pipelines" in asyncio.run(_tools(http_server, TOKEN))


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_without_the_token_every_request_is_refused(http_server: str, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx2.post(http_server, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    assert "MCP_HTTP_TOKEN" in response.json()["error_description"]
    with pytest.raises(BaseException):
        asyncio.run(_tools(http_server, token))


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--http"], {}, "MCP_HTTP_TOKEN is required"),
        (["--http", "--host", "0.0.0.0"], {"MCP_HTTP_TOKEN": TOKEN}, "not a loopback address"),
        ([], {"MCP_TOOL_GROUPS": "pipelines,warehouse"}, "unknown group(s) warehouse"),
    ],
)
def test_bad_invocations_print_one_clean_line(mcp_world: McpWorld, args: list[str], env: dict, message: str) -> None:
    done = subprocess.run(
        [str(BIN / "sophia-mcp"), *args],
        env={**mcp_world.env, **env},
        cwd=mcp_world.root,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr

"""Drives the real ``sophia-mcp`` server with the official SDK's client, over stdio or streamable HTTP."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters, types
from mcp.client.stdio import stdio_client

from sophia_dagster.config import PLATFORM_CATALOG_DIR

BIN = Path(sys.executable).parent
CLEARED = ("ENVIRONMENT", "POSTGRES_DSN", "MCP_ALLOW_WRITES", "MCP_TOOL_GROUPS", "DAGSTER_UI_URL", "PULUMI_ENVIRONMENT")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} after {seconds}s")


@dataclass
class McpWorld:
    """A state directory, a catalog folder and the environment the server runs in."""

    root: Path
    env: dict[str, str]
    elicited: list[str] = field(default_factory=list)

    @property
    def catalog_dir(self) -> Path:
        return Path(self.env["MCP_CATALOG_DIR"])

    @property
    def stderr(self) -> Path:
        """Everything the servers of this world wrote to stderr (their log)."""
        return self.root / "server-stderr.log"

    @property
    def audit(self) -> Path:
        return Path(self.env["STATE_DIR"]) / "mcp" / "audit.jsonl"

    def session(
        self,
        script: Callable[[Client], Awaitable[Any]],
        *args: str,
        answer: str = "accept",
        env: dict[str, str] | None = None,
    ) -> Any:
        """Run ``script`` against a fresh stdio server started with ``args``; the user answers ``answer``."""

        async def on_elicit(context: Any, params: Any) -> types.ElicitResult:
            self.elicited.append(params.message)
            content = {"confirm": True} if answer == "accept" else None
            return types.ElicitResult(action=answer, content=content)

        server = StdioServerParameters(
            command=str(BIN / "sophia-mcp"), args=list(args), env={**self.env, **(env or {})}, cwd=str(self.root)
        )

        async def run() -> Any:
            with self.stderr.open("a") as errlog:
                async with Client(stdio_client(server, errlog=errlog), elicitation_callback=on_elicit) as client:
                    return await script(client)

        return asyncio.run(run())


@pytest.fixture
def mcp_world(tmp_path: Path, make_state_dir: Callable[[str], Path], redis_url: str) -> Iterator[McpWorld]:
    """A fresh catalog folder (a copy of the platform's) and a state directory of its own."""
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(PLATFORM_CATALOG_DIR, catalog_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        STATE_DIR=str(make_state_dir("mcp")),
        MCP_CATALOG_DIR=str(catalog_dir),
        REDIS_URL=redis_url,
        DAGSTER_UI_URL=f"http://127.0.0.1:{free_port()}",
    )
    yield McpWorld(tmp_path, env)


def text_of(result: types.CallToolResult) -> str:
    """The text a tool call returned (its error message when it failed)."""
    return " ".join(part.text for part in result.content if isinstance(part, types.TextContent))

"""The MCP server: tool groups over one platform, switched on and off by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mcp.server.mcpserver import MCPServer

from sophia_dagster.mcp.platform import McpPlatform
from sophia_dagster.mcp.tools import assets, health, memory, pipelines

GROUPS: dict[str, Callable[[MCPServer, McpPlatform], None]] = {
    "pipelines": pipelines.register,
    "assets": assets.register,
    "health": health.register,
    "memory": memory.register,
}
INSTRUCTIONS = (
    "Operate Sophia AI's data platform: Estuary pipelines (captures, materializations), Dagster assets and runs, "
    "governance health, and the memory tiers. Results carry counts, schemas and statuses, never warehouse rows. "
    "Write tools act only when the server was started with writes allowed, and ask the user to confirm."
)


class UnknownGroupError(ValueError):
    """A tool group name that does not exist."""


def parse_groups(text: str) -> list[str]:
    """The group names of a comma-separated setting; raises ``UnknownGroupError`` naming unknown ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in GROUPS]
    if unknown:
        raise UnknownGroupError(f"MCP_TOOL_GROUPS: unknown group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
    return names


def build_server(platform: McpPlatform, groups: Iterable[str]) -> MCPServer:
    """An MCP server with the tools of ``groups`` over ``platform``.

    Args:
        platform: what the tools operate on, with the guard that decides whether writes may act.
        groups: names from ``GROUPS``.

    Example:
        server = build_server(platform, ["pipelines", "assets"])
        server.run()  # stdio
    """
    server = MCPServer("sophia-dagster", instructions=INSTRUCTIONS, log_level="WARNING")
    for name in groups:
        GROUPS[name](server, platform)
    return server

"""An MCP server for the whole code location: pipelines, assets, health and memory, read-only unless allowed.

Run it with ``sophia-mcp`` (stdio) or ``sophia-mcp --http`` (streamable HTTP on loopback, bearer token).
"""

"""The MCP tool groups; each module's ``register`` adds its tools to a server."""

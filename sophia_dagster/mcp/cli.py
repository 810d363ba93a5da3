"""``sophia-mcp``: the MCP server over stdio (default) or streamable HTTP on loopback with a bearer token.

This module is the MCP process's composition root (as ``definitions.py`` is Dagster's): it reads the settings
and binds the same resources the code location uses.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from starlette.types import ASGIApp, Receive, Scope, Send

from sophia_dagster.config import PLATFORM_CATALOG_DIR, SECRET_FIELDS, ConfigError, Settings, get_settings
from sophia_dagster.estuary.catalog import CatalogError
from sophia_dagster.estuary.errors import EstuaryError
from sophia_dagster.estuary.http import Redactor
from sophia_dagster.mcp.audit import AuditLog
from sophia_dagster.mcp.authoring import AuthoringError
from sophia_dagster.mcp.dagster_api import DagsterApi, DagsterApiError
from sophia_dagster.mcp.discovery import DiscoveryError
from sophia_dagster.mcp.guard import Guard
from sophia_dagster.mcp.platform import Lazy, McpPlatform
from sophia_dagster.mcp.server import UnknownGroupError, build_server, parse_groups
from sophia_dagster.memory.errors import MemoryTierError

if TYPE_CHECKING:
    from sophia_dagster.doctor import Report
    from sophia_dagster.estuary.runtime import EstuaryRuntime
    from sophia_dagster.memory.service import UnifiedMemoryService

log = logging.getLogger("sophia_dagster.mcp")


def redactor_for(settings: Settings) -> Redactor:
    """A redactor that knows every secret of the settings."""
    redactor = Redactor()
    redactor.add(getattr(settings, name).get_secret_value() for name in SECRET_FIELDS if getattr(settings, name))
    return redactor


def platform_for(settings: Settings, *, allow_writes: bool) -> McpPlatform:
    """The platform the tools operate on, bound as the code location binds it for ``settings.environment``.

    The heavy parts (warehouse, memory tiers, Dagster's client) are imported on first use, so the server
    answers ``tools/list`` without loading them.
    """
    redact = redactor_for(settings)
    audit = AuditLog(settings.mcp_audit_log or settings.state_dir / "mcp" / "audit.jsonl", redact)
    expected = (
        CatalogError,
        EstuaryError,
        AuthoringError,
        DiscoveryError,
        DagsterApiError,
        MemoryTierError,
        psycopg.OperationalError,
        OSError,
    )
    return McpPlatform(
        catalog_dir=Path(settings.mcp_catalog_dir or PLATFORM_CATALOG_DIR),
        runtime=lambda path: _runtime(settings, path),
        source_dsn=Lazy(lambda: _source_dsn(settings)),
        memory=Lazy(lambda: _memory(settings)),
        dagster=Lazy(lambda: DagsterApi(settings.dagster_ui_url)),
        report=lambda: _latest_report(settings.state_dir),
        doctor=lambda: _doctor(settings),
        guard=Guard(allow_writes=allow_writes, audit=audit, redact=redact, expected=expected),
        defaults=_authoring_defaults(settings),
    )


def _runtime(settings: Settings, catalog_dir: Path) -> EstuaryRuntime:
    from sophia_dagster.defs.resources import ESTUARY_BY_ENVIRONMENT

    return ESTUARY_BY_ENVIRONMENT[settings.environment](settings, catalog_dir).process_config_and_initialize()


def _source_dsn(settings: Settings) -> str:
    from sophia_dagster.postgres_source import source_postgres

    return source_postgres(settings).process_config_and_initialize().get_dsn()


def _memory(settings: Settings) -> UnifiedMemoryService:
    from sophia_dagster.memory.resources import memory_service

    return memory_service(settings)


def _authoring_defaults(settings: Settings) -> dict[str, Any]:
    """This platform's choices for new tasks: placeholders for secrets, the warehouse's database and schema."""
    return {
        "source_database": "sophia",
        "capture_endpoint": {
            "address": "${POSTGRES_CAPTURE_ADDRESS}",
            "user": "flow_capture",
            "credentials": {"auth_type": "UserPassword", "password": "${POSTGRES_CAPTURE_PASSWORD}"},
        },
        "materialization_endpoint": {
            "host": "${SNOWFLAKE_ACCOUNT}.snowflakecomputing.com",
            "database": settings.snowflake_database,
            "schema": settings.snowflake_schema,
            "warehouse": "SOPHIA_AI_COMPUTE_WH",
            "role": "SOPHIA_ESTUARY_ROLE",
            "credentials": {
                "auth_type": "jwt",
                "user": "SOPHIA_ESTUARY",
                "private_key": "${ESTUARY_SNOWFLAKE_PRIVATE_KEY}",
            },
        },
    }


def _doctor(settings: Settings) -> Report:
    from sophia_dagster.doctor import check_environment

    return check_environment(settings)


def _latest_report(state_dir: Path) -> str | None:
    from sophia_dagster.governance.report import latest_report

    return latest_report(state_dir)


class BearerAuth:
    """ASGI middleware: every request needs ``Authorization: Bearer <token>`` (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await _unauthorized(send)
                return
        await self.app(scope, receive, send)


async def _unauthorized(send: Send) -> None:
    body = b'{"error":"unauthorized","error_description":"a valid bearer token (MCP_HTTP_TOKEN) is required"}'
    headers = [(b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="sophia-mcp"')]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sophia-mcp", description="MCP server for Sophia AI's data platform")
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP on loopback (needs MCP_HTTP_TOKEN)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind with --http")
    parser.add_argument("--port", type=int, help="port for --http (default MCP_HTTP_PORT)")
    parser.add_argument("--allow-writes", action="store_true", help="let write tools act (also MCP_ALLOW_WRITES)")
    return parser


def _serve_http(server: object, settings: Settings, host: str, port: int) -> None:
    import uvicorn

    if settings.mcp_http_token is None:
        raise ConfigError("MCP_HTTP_TOKEN is required to serve HTTP")
    if not ipaddress.ip_address(host).is_loopback:
        raise ConfigError(f"--host {host} is not a loopback address; sophia-mcp serves HTTP on loopback only")
    app = BearerAuth(server.streamable_http_app(host=host), settings.mcp_http_token.get_secret_value())
    uvicorn.run(app, host=host, port=port, log_level="warning")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until its client disconnects (stdio) or it is stopped (HTTP)."""
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
        groups = parse_groups(settings.mcp_tool_groups)
        platform = platform_for(settings, allow_writes=args.allow_writes or settings.mcp_allow_writes)
        server = build_server(platform, groups)
        if args.http:
            _serve_http(server, settings, args.host, args.port or settings.mcp_http_port)
        else:
            server.run()
    except (ConfigError, UnknownGroupError, ValueError) as exc:
        print(f"sophia-mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

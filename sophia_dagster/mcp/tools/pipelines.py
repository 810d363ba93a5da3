"""Pipeline tools: list, inspect, create, publish, pause and resume Estuary tasks (embedded or in Estuary)."""

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from sophia_dagster.estuary.models import TaskStats, TaskStatus
from sophia_dagster.mcp import authoring
from sophia_dagster.mcp.discovery import discover_tables
from sophia_dagster.mcp.guard import ExpectedToolError
from sophia_dagster.mcp.platform import McpPlatform

Kind = Literal["capture", "derivation", "materialization"]
SENSITIVE_KEY = re.compile(r"password|secret|token|private_key|passphrase|api_key|credentials_json", re.IGNORECASE)
READ = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True)


class PipelineSummary(BaseModel):
    """One task: what it is, how it is doing, and when it last moved data."""

    name: str
    kind: Kind
    connector: str
    bindings: int
    status: str = Field(description="ok | taskDisabled | warning | error")
    message: str
    disabled: bool
    last_activity: str | None = Field(description="Start of the latest hour with documents moved (UTC), if any")
    docs_last_24h: int


class BindingActivity(BaseModel):
    """Documents and bytes one binding moved in the last 24 hours."""

    collection: str
    docs: int
    bytes: int


class PipelineDetail(BaseModel):
    """One task's spec (secrets masked), status and the last 24 hours of stats."""

    name: str
    kind: Kind
    file: str
    spec: dict[str, Any]
    status: str
    message: str
    disabled: bool
    docs_written_24h: int
    docs_read_24h: int
    errors_24h: int
    failures_24h: int
    bindings: list[BindingActivity]


class CreatedPipeline(BaseModel):
    """A task written into the catalog, and what publishing it did (when asked)."""

    name: str
    file: str
    collections: list[str]
    dry_run_pub_id: str | None = None
    pub_id: str | None = None
    published: bool = False


class ControlResult(BaseModel):
    """The outcome of pausing, resuming or publishing a task."""

    names: list[str]
    pub_id: str
    status: str
    dry_run: bool = False


def mask_spec(value: Any) -> Any:
    """The spec with the value of every credential-like key replaced by ``***``."""
    if isinstance(value, Mapping):
        return {k: "***" if SENSITIVE_KEY.search(str(k)) else mask_spec(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_spec(v) for v in value]
    return value


def _kind(platform: McpPlatform, name: str) -> Kind:
    catalog = platform.catalog()
    if name not in catalog.tasks:
        known = ", ".join(sorted(catalog.tasks)) or "none"
        raise ExpectedToolError(f"unknown pipeline {name!r}; the catalog's pipelines are: {known}")
    return catalog.spec_type(name)


def _last_day(platform: McpPlatform, names: list[str]) -> tuple[list[TaskStatus], list[TaskStats]]:
    runtime = platform.estuary()
    since = datetime.now(UTC) - timedelta(hours=24)
    return runtime.status(names), runtime.stats(names, since)


def list_pipelines(platform: McpPlatform, kind: Kind | None) -> list[PipelineSummary]:
    """Every task of the catalog (or those of one kind) with status and last activity."""
    catalog = platform.catalog()
    names = [n for n in sorted(catalog.tasks) if kind is None or catalog.spec_type(n) == kind]
    statuses, stats = _last_day(platform, names) if names else ([], [])
    summaries = []
    for name, status in zip(names, statuses):
        rows = [r for r in stats if r.catalog_name == name]
        moved = [r for r in rows if r.docs_written_by_me or r.docs_read_by_me]
        summaries.append(
            PipelineSummary(
                name=name,
                kind=catalog.spec_type(name),
                connector=catalog.tasks[name].endpoint.connector.image,
                bindings=len(catalog.collections_of(name)),
                status=status.status,
                message=status.message,
                disabled=status.disabled,
                last_activity=max(r.ts for r in moved).isoformat() if moved else None,
                docs_last_24h=sum(r.docs_written_by_me + r.docs_read_by_me for r in rows),
            )
        )
    return summaries


def show_pipeline(platform: McpPlatform, name: str) -> PipelineDetail:
    """One task's masked spec, status and stats."""
    kind = _kind(platform, name)
    catalog = platform.catalog()
    (status,), rows = _last_day(platform, [name])
    bindings = [
        BindingActivity(
            collection=c,
            docs=sum(r.bindings[c].docs for r in rows if c in r.bindings),
            bytes=sum(r.bindings[c].bytes for r in rows if c in r.bindings),
        )
        for c in catalog.collections_of(name)
    ]
    return PipelineDetail(
        name=name,
        kind=kind,
        file=str(catalog.files[name]),
        spec=mask_spec(catalog.spec(name)),
        status=status.status,
        message=status.message,
        disabled=status.disabled,
        docs_written_24h=sum(r.docs_written_by_me for r in rows),
        docs_read_24h=sum(r.docs_read_by_me for r in rows),
        errors_24h=sum(r.errors for r in rows),
        failures_24h=sum(r.failures for r in rows),
        bindings=bindings,
    )


def _publish_new(platform: McpPlatform, created: CreatedPipeline, publish: bool) -> CreatedPipeline:
    if not publish:
        return created
    runtime = platform.estuary()
    dry = runtime.publish([created.name], dry_run=True)
    live = runtime.publish([created.name])
    return created.model_copy(update={"dry_run_pub_id": dry.pub_id, "pub_id": live.pub_id, "published": True})


def create_postgres_capture(
    platform: McpPlatform, name: str, tables: list[str] | None, schema: str, publish: bool
) -> CreatedPipeline:
    """Discover the tables, write the capture and its collections, and publish when asked (dry run first)."""
    catalog = platform.catalog()
    discovered = discover_tables(platform.source_dsn(), schema, tables)
    defaults = platform.defaults
    document = authoring.capture_document(
        name, discovered, database=defaults["source_database"], endpoint=defaults["capture_endpoint"]
    )
    text = authoring.render(document, "create_postgres_capture")
    path = authoring.write_catalog_file(platform.catalog_dir, name, text, catalog)
    created = CreatedPipeline(name=name, file=path.name, collections=list(document["collections"]))
    return _publish_new(platform, created, publish)


def create_snowflake_materialization(
    platform: McpPlatform, name: str, collections: list[str] | None, publish: bool
) -> CreatedPipeline:
    """Write a Snowflake materialization of the collections (every captured one when None); publish when asked."""
    catalog = platform.catalog()
    chosen = collections or [c for task in sorted(catalog.captures) for c in catalog.collections_of(task)]
    if not chosen:
        raise ExpectedToolError("the catalog has no collections to materialize; create a capture first")
    document = authoring.materialization_document(
        name, chosen, catalog, endpoint=platform.defaults["materialization_endpoint"], catalog_dir=platform.catalog_dir
    )
    text = authoring.render(document, "create_snowflake_materialization")
    path = authoring.write_catalog_file(platform.catalog_dir, name, text, catalog)
    created = CreatedPipeline(name=name, file=path.name, collections=chosen)
    return _publish_new(platform, created, publish)


def register(server: MCPServer, platform: McpPlatform) -> None:
    """Add the pipeline tools to ``server``."""
    guard = platform.guard

    @server.tool(name="list_pipelines", annotations=READ)
    def list_pipelines_tool(kind: Kind | None = None) -> list[PipelineSummary]:
        """List the data pipelines (captures, derivations, materializations) with status and last activity."""
        return guard.read("list_pipelines", lambda: list_pipelines(platform, kind))

    @server.tool(name="show_pipeline", annotations=READ)
    def show_pipeline_tool(name: str) -> PipelineDetail:
        """Show one pipeline's spec (secrets masked), status and the last 24 hours of stats."""
        return guard.read("show_pipeline", lambda: show_pipeline(platform, name))

    @server.tool(
        name="create_postgres_capture",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False),
    )
    def create_postgres_capture_tool(
        name: str,
        ctx: Context,
        confirmation: guard.confirmation("create_postgres_capture", "write a new capture into the catalog"),
        tables: list[str] | None = None,
        schema: str = "public",
        publish: bool = False,
    ) -> CreatedPipeline:
        """Create a PostgreSQL CDC capture of the given tables (all tables with a primary key when omitted).

        It is written as catalog YAML in the repo and validated; it is published (dry run first) only when
        ``publish`` is true.
        """
        arguments = {"name": name, "tables": tables, "schema": schema, "publish": publish}
        return guard.write(
            ctx,
            "create_postgres_capture",
            arguments,
            confirmation,
            lambda: create_postgres_capture(platform, name, tables, schema, publish),
            lambda c: f"wrote {c.file}; published: {c.published}",
        )

    @server.tool(
        name="create_snowflake_materialization",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False),
    )
    def create_snowflake_materialization_tool(
        name: str,
        ctx: Context,
        confirmation: guard.confirmation("create_snowflake_materialization", "write a new materialization"),
        collections: list[str] | None = None,
        publish: bool = False,
    ) -> CreatedPipeline:
        """Create a Snowflake materialization of the given collections (every captured collection when omitted).

        It is written as catalog YAML in the repo and validated; it is published (dry run first) only when
        ``publish`` is true.
        """
        arguments = {"name": name, "collections": collections, "publish": publish}
        return guard.write(
            ctx,
            "create_snowflake_materialization",
            arguments,
            confirmation,
            lambda: create_snowflake_materialization(platform, name, collections, publish),
            lambda c: f"wrote {c.file}; published: {c.published}",
        )

    @server.tool(
        name="publish_pipeline",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True),
    )
    def publish_pipeline_tool(
        name: str,
        ctx: Context,
        confirmation: guard.confirmation("publish_pipeline", "publish the pipeline's catalog spec"),
        dry_run: bool = True,
    ) -> ControlResult:
        """Publish one pipeline as the catalog defines it; a dry run (the default) validates without activating."""

        def act() -> ControlResult:
            _kind(platform, name)
            result = platform.estuary().publish([name], dry_run=dry_run)
            return ControlResult(names=result.names, pub_id=result.pub_id, status=result.status, dry_run=dry_run)

        return guard.write(ctx, "publish_pipeline", {"name": name, "dry_run": dry_run}, confirmation, act)

    for verb, disabled in (("pause", True), ("resume", False)):
        _register_toggle(server, platform, verb, disabled)


def _register_toggle(server: MCPServer, platform: McpPlatform, verb: str, disabled: bool) -> None:
    guard = platform.guard
    tool = f"{verb}_pipeline"

    def toggle(
        name: str,
        ctx: Context,
        confirmation: guard.confirmation(tool, f"{verb} the pipeline's shards"),
    ) -> ControlResult:
        def act() -> ControlResult:
            _kind(platform, name)
            runtime = platform.estuary()
            result = runtime.pause(name) if disabled else runtime.resume(name)
            return ControlResult(names=[name], pub_id=result.pub_id, status=result.status)

        return guard.write(ctx, tool, {"name": name}, confirmation, act)

    toggle.__doc__ = (
        "Pause a pipeline: stop its shards without deleting anything."
        if disabled
        else "Resume a paused pipeline: restart its shards."
    )
    server.add_tool(
        toggle, name=tool, annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True)
    )

"""Asset tools: the asset graph's latest state, materializing a selection, and a run's outcome (via GraphQL)."""

from datetime import UTC, datetime

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from sophia_dagster.mcp.guard import ExpectedToolError
from sophia_dagster.mcp.platform import McpPlatform

READ = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)


class CheckState(BaseModel):
    """The latest result of one asset check."""

    name: str
    blocking: bool
    status: str | None = Field(
        description="SUCCEEDED | FAILED | IN_PROGRESS | SKIPPED | EXECUTION_FAILED; None if never run"
    )


class AssetState(BaseModel):
    """One asset: its group, its latest materialization and its checks."""

    key: str
    group: str | None
    materializable: bool
    last_materialized: str | None
    last_run_id: str | None
    checks: list[CheckState]


class LaunchedRun(BaseModel):
    """A run the tool started, to follow with ``run_status``."""

    run_id: str
    job: str
    assets: list[str]
    url: str


class RunState(BaseModel):
    """A run's status and, when it failed, the error of each failed step."""

    run_id: str
    job: str
    status: str
    assets: list[str]
    errors: list[str]


def _key(path: list[str]) -> str:
    return "/".join(path)


def _state(node: dict) -> AssetState:
    latest = (node.get("assetMaterializations") or [None])[0]
    checks = (node.get("assetChecksOrError") or {}).get("checks") or []
    return AssetState(
        key=_key(node["assetKey"]["path"]),
        group=node.get("groupName"),
        materializable=bool(node.get("isMaterializable")),
        last_materialized=datetime.fromtimestamp(int(latest["timestamp"]) / 1000, UTC).isoformat() if latest else None,
        last_run_id=latest["runId"] if latest else None,
        checks=[
            CheckState(
                name=c["name"],
                blocking=c["blocking"],
                status=(c.get("executionForLatestMaterialization") or {}).get("status"),
            )
            for c in checks
        ],
    )


def list_assets(platform: McpPlatform, prefix: str | None) -> list[AssetState]:
    """Every asset whose key starts with ``prefix`` (all when None)."""
    states = [_state(node) for node in platform.dagster().assets()]
    return sorted((s for s in states if prefix is None or s.key.startswith(prefix)), key=lambda s: s.key)


def launch(platform: McpPlatform, selection: list[str], job: str) -> LaunchedRun:
    """Launch ``job`` over the selected asset keys, refusing keys the graph does not have."""
    api = platform.dagster()
    known = {_key(node["assetKey"]["path"]): node for node in api.assets()}
    unknown = [key for key in selection if key not in known]
    if unknown:
        raise ExpectedToolError(f"unknown asset keys: {', '.join(unknown)} (keys look like snowflake/sophia/raw/deals)")
    if not selection:
        raise ExpectedToolError("select at least one asset key")
    run_id = api.launch([key.split("/") for key in selection], job_name=job)
    return LaunchedRun(run_id=run_id, job=job, assets=selection, url=f"{api.url}/runs/{run_id}")


def register(server: MCPServer, platform: McpPlatform) -> None:
    """Add the asset tools to ``server``."""
    guard = platform.guard

    @server.tool(name="list_assets", annotations=READ)
    def list_assets_tool(prefix: str | None = None) -> list[AssetState]:
        """List assets with their latest materialization and the status of their checks (no row data)."""
        return guard.read("list_assets", lambda: list_assets(platform, prefix))

    @server.tool(
        name="materialize_assets",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False),
    )
    def materialize_assets_tool(
        selection: list[str],
        ctx: Context,
        confirmation: guard.confirmation("materialize_assets", "launch a run materializing the selected assets"),
    ) -> LaunchedRun:
        """Materialize the selected assets (keys like ``snowflake/sophia/raw/deals``) in a new run."""
        return guard.write(
            ctx,
            "materialize_assets",
            {"selection": selection},
            confirmation,
            lambda: launch(platform, selection, "__ASSET_JOB"),
            lambda run: f"launched run {run.run_id}",
        )

    @server.tool(name="run_status", annotations=READ)
    def run_status_tool(run_id: str) -> RunState:
        """A run's status, and the error of each failed step when it failed."""

        def read() -> RunState:
            run = platform.dagster().run(run_id)
            return RunState(
                run_id=run["runId"],
                job=run["jobName"],
                status=run["status"],
                assets=[_key(a["path"]) for a in run.get("assetSelection") or []],
                errors=run["errors"],
            )

        return guard.read("run_status", read)

"""Health tools: run the governance checks for a selection, and read the latest health report."""

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel

from sophia_dagster.mcp.guard import ExpectedToolError
from sophia_dagster.mcp.platform import McpPlatform
from sophia_dagster.mcp.tools.assets import LaunchedRun, launch

GOVERNANCE_JOB = "governance_daily"


class HealthReport(BaseModel):
    """The latest governance health report (markdown)."""

    markdown: str


class ServiceState(BaseModel):
    """One service of the environment: reachable or not, how fast, and what degrades while it is down."""

    service: str
    status: str
    latency_ms: float | None
    detail: str
    degrades: str
    required: bool


class EnvironmentState(BaseModel):
    """Whether the environment can run, and the state of each of its services (secrets never shown)."""

    environment: str
    can_run: bool
    verdict: str
    services: list[ServiceState]


def register(server: MCPServer, platform: McpPlatform) -> None:
    """Add the health tools to ``server``."""
    guard = platform.guard

    @server.tool(
        name="run_health_checks",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True),
    )
    def run_health_checks_tool(
        selection: list[str],
        ctx: Context,
        confirmation: guard.confirmation("run_health_checks", "launch a governance run"),
    ) -> LaunchedRun:
        """Run the daily governance checks (and report) for the selected asset keys of the governance job."""
        return guard.write(
            ctx,
            "run_health_checks",
            {"selection": selection},
            confirmation,
            lambda: launch(platform, selection, GOVERNANCE_JOB),
            lambda run: f"launched run {run.run_id}",
        )

    @server.tool(
        name="latest_health_report",
        annotations=ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True),
    )
    def latest_health_report_tool() -> HealthReport:
        """The latest health report: every check's result, each pipeline's status and lag, the trend."""

        def read() -> HealthReport:
            markdown = platform.report()
            if markdown is None:
                raise ExpectedToolError("no health report yet: run the governance_daily job (or run_health_checks)")
            return HealthReport(markdown=markdown)

        return guard.read("latest_health_report", read)

    @server.tool(
        name="check_environment",
        annotations=ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True),
    )
    def check_environment_tool() -> EnvironmentState:
        """Which services of the environment answer (PostgreSQL, Redis, warehouse, Estuary, ESC, webhook) and
        what degrades while one is down."""

        def read() -> EnvironmentState:
            report = platform.doctor()
            return EnvironmentState(
                environment=report.environment,
                can_run=report.can_run,
                verdict=report.verdict(),
                services=[ServiceState(**vars(check)) for check in report.checks],
            )

        return guard.read("check_environment", read)

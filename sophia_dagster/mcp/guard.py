"""What every tool call goes through: write permission, the user's confirmation, the audit log, clean errors.

A tool body never lets an exception out unredacted: known failures become tool errors with a clear message,
anything else a generic "internal error" (the details go to the server log, redacted).
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import AcceptedElicitation, CancelledElicitation, Context, DeclinedElicitation, Elicit
from mcp.server.mcpserver import Resolve as _Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from sophia_dagster.mcp.audit import AuditLog

T = TypeVar("T")
log = logging.getLogger("sophia_dagster.mcp")


class Confirm(BaseModel):
    """The question a write asks the user before it acts."""

    confirm: bool = Field(description="Go ahead with this change")


Confirmation = AcceptedElicitation[Confirm] | DeclinedElicitation | CancelledElicitation


class ExpectedToolError(Exception):
    """A failure whose message is safe and useful to show the model (unknown task, bad name, ...)."""


class Guard:
    """Applies the server's safety rules to tool calls and records writes and refusals in the audit log."""

    def __init__(
        self,
        *,
        allow_writes: bool,
        audit: AuditLog,
        redact: Callable[[str], str],
        expected: tuple[type[BaseException], ...],
    ) -> None:
        self.allow_writes, self.audit, self.redact = allow_writes, audit, redact
        self.expected = (ExpectedToolError, *expected)

    def confirmation(self, tool: str, what: str) -> Any:
        """The annotation of a write tool's confirmation parameter: asks the user where the client can be asked."""

        def ask(ctx: Context) -> Elicit[Confirm] | Confirmation:
            if not self.allow_writes:
                return DeclinedElicitation()
            capabilities = ctx.client_capabilities
            if capabilities is None or capabilities.elicitation is None:
                return AcceptedElicitation[Confirm](data=Confirm(confirm=True))
            return Elicit(f"sophia-mcp: {tool} will {what}. Go ahead?", Confirm)

        ask.__name__ = f"confirm_{tool}"
        return Annotated[Confirmation, _Resolve(ask)]

    def read(self, tool: str, action: Callable[[], T]) -> T:
        """Run a read-only tool body, turning failures into clean tool errors."""
        try:
            return action()
        except self.expected as exc:
            raise ToolError(self.redact(str(exc))) from None
        except Exception as exc:
            log.error("%s failed: %s: %s", tool, type(exc).__name__, self.redact(str(exc)))
            raise ToolError(
                f"{tool} failed with an internal error ({type(exc).__name__}); see the server log"
            ) from None

    def write(
        self,
        ctx: Context,
        tool: str,
        arguments: Mapping[str, Any],
        confirmation: Confirmation,
        action: Callable[[], T],
        describe: Callable[[T], str] = str,
    ) -> T:
        """Run a write tool body if writes are allowed and the user confirmed; audit the outcome either way."""
        who = who_called(ctx)
        if not self.allow_writes:
            self._refuse(who, tool, arguments, "refused", "writes are disabled; start sophia-mcp with --allow-writes")
        if not isinstance(confirmation, AcceptedElicitation) or not confirmation.data.confirm:
            self._refuse(who, tool, arguments, "declined", "the user did not confirm the change; nothing was done")
        try:
            result = self.read(tool, action)
        except ToolError as exc:
            self.audit.record(who=who, tool=tool, arguments=arguments, outcome="error", detail=str(exc))
            raise
        self.audit.record(who=who, tool=tool, arguments=arguments, outcome="ok", detail=describe(result))
        return result

    def _refuse(self, who: str, tool: str, arguments: Mapping[str, Any], outcome: Any, why: str) -> None:
        self.audit.record(who=who, tool=tool, arguments=arguments, outcome=outcome, detail=why)
        raise ToolError(f"{tool}: {why}")


def who_called(ctx: Context) -> str:
    """The caller as the audit log names it: the OS user running the server, and the MCP client's name."""
    client = "unknown client"
    params = getattr(ctx.session, "client_params", None)
    info = getattr(params, "client_info", None)
    if info is not None:
        client = f"{info.name} {info.version}".strip()
    return f"{getpass.getuser()} via {client}"

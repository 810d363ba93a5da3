"""Result models shared by every Estuary runtime (the control plane client and the local data plane)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

HEALTHY_STATUSES = frozenset({"ok", "taskDisabled"})


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class TaskStatus(_Result):
    """The controller's view of one catalog spec (``GET /api/v1/catalog/status``)."""

    catalog_name: str
    spec_type: str | None = None
    status: str = Field(description="ok | taskDisabled | warning | error")
    message: str = ""
    disabled: bool = False
    last_pub_id: str | None = None
    last_build_id: str | None = None
    controller_error: str | None = None
    controller_failures: int = 0

    @property
    def healthy(self) -> bool:
        """True for ``ok`` and ``taskDisabled``; false for ``warning`` and ``error``."""
        return self.status in HEALTHY_STATUSES

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> TaskStatus:
        """Build from one element of the agent API's status answer."""
        summary = row.get("summary") or {}
        return cls(
            catalog_name=row["catalog_name"],
            spec_type=row.get("spec_type"),
            status=summary.get("status", "error"),
            message=summary.get("message") or "",
            disabled=bool(row.get("disabled")),
            last_pub_id=row.get("last_pub_id"),
            last_build_id=row.get("last_build_id"),
            controller_error=row.get("controller_error"),
            controller_failures=row.get("controller_failures") or 0,
        )


class BindingStats(_Result):
    """Documents and bytes one task moved for one collection (a capture binding or materialization binding)."""

    docs: int = 0
    bytes: int = 0


class TaskStats(_Result):
    """One row of ``catalog_stats_{hourly,daily,monthly}`` for one catalog name and time bucket."""

    catalog_name: str
    grain: str = "hourly"
    ts: datetime
    docs_written_by_me: int = 0
    bytes_written_by_me: int = 0
    docs_read_by_me: int = 0
    bytes_read_by_me: int = 0
    docs_written_to_me: int = 0
    bytes_written_to_me: int = 0
    docs_read_from_me: int = 0
    bytes_read_from_me: int = 0
    warnings: int = 0
    errors: int = 0
    failures: int = 0
    usage_seconds: int = 0
    bindings: dict[str, BindingStats] = Field(
        default_factory=dict, description="per collection: what this task captured into it or materialized from it"
    )


class PublishResult(_Result):
    """What a publish did: a publication that ended in ``success``, or ``unchanged`` when nothing differed.

    ``names`` were published; ``unchanged`` were identical to their live specs and left out (when nothing is
    left, no publication is made and ``pub_id`` is the live one). ``changes`` lists, per published name, how
    its live spec changes (secrets masked).
    """

    pub_id: str
    status: str = "success"
    dry_run: bool = False
    names: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    changes: dict[str, list[str]] = Field(default_factory=dict)

    @property
    def summary(self) -> str:
        """One line for the run log."""
        if self.status == "unchanged":
            return f"unchanged, nothing published (live pub_id {self.pub_id})"
        kept = f"; {len(self.unchanged)} unchanged specs left out" if self.unchanged else ""
        return f"published {', '.join(self.names)} as {self.pub_id} ({self.status}){kept}"


class DraftError(_Result):
    """One build/validation error of a failed publication (``draft_errors`` row)."""

    scope: str = ""
    detail: str = ""

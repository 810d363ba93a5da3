"""What the MCP tools operate on: the catalog folder, the Estuary runtime, Dagster's API, memory, the guard.

Everything is built on first use, so listing the tools (or a client that never calls one) connects to nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sophia_dagster.estuary.catalog import Catalog, load_catalog
from sophia_dagster.mcp.guard import Guard

if TYPE_CHECKING:
    from sophia_dagster.doctor import Report
    from sophia_dagster.estuary.runtime import EstuaryRuntime
    from sophia_dagster.mcp.dagster_api import DagsterApi
    from sophia_dagster.memory.service import UnifiedMemoryService

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value built once, on first use, safely from several threads."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build, self._value, self._lock = build, None, threading.Lock()

    def __call__(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value


@dataclass
class McpPlatform:
    """The parts of the platform the tools use, each built lazily.

    Args:
        catalog_dir: the Flow catalog folder the pipeline tools read and the create tools write into.
        runtime: builds the Estuary runtime (embedded data plane or Estuary's control plane) for a catalog folder.
        source_dsn: the PostgreSQL the create-capture tool discovers tables in.
        memory: builds the UnifiedMemoryService.
        dagster: the Dagster webserver's GraphQL API.
        report: reads the latest governance health report (None when none was written yet).
        doctor: probes every service of the environment (``sophia-doctor``'s report).
        guard: the server's safety rules and audit log.
        defaults: platform choices the create tools use (warehouse database and schema, ...).
    """

    catalog_dir: Path
    runtime: Callable[[Path], EstuaryRuntime]
    source_dsn: Callable[[], str]
    memory: Callable[[], UnifiedMemoryService]
    dagster: Callable[[], DagsterApi]
    report: Callable[[], str | None]
    doctor: Callable[[], Report]
    guard: Guard
    defaults: dict[str, Any] = field(default_factory=dict)

    def catalog(self) -> Catalog:
        """The catalog as the folder holds it now (create tools add files, so it is read on every call)."""
        return load_catalog(self.catalog_dir)

    def estuary(self) -> EstuaryRuntime:
        """The runtime of this environment over the catalog folder."""
        return self.runtime(self.catalog_dir)

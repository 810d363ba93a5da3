"""A HubSpot capture run by the embedded data plane: CRM documents -> warehouse tables, each commit with its cursor.

Per binding, the warehouse holds the HubSpot cursor (epoch milliseconds of the newest change read) in the
same checkpoint table, and in the same transaction, as the rows: a run that dies loses and duplicates
nothing, and the next one reads from the committed cursor. A binding HubSpot refuses (a missing scope)
is reported after the others have been written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dagster_snowflake import SnowflakeResource

from sophia_dagster.dataplane import sessions
from sophia_dagster.dataplane.errors import DataPlaneError
from sophia_dagster.dataplane.hubspot import Batch, CrmObject, HubSpotCapture, HubSpotError
from sophia_dagster.dataplane.materialize import Load, Materializer, TableBinding, data_plane_connection, use_schema
from sophia_dagster.dataplane.pipeline import RunReport
from sophia_dagster.dataplane.plan import key_fields, materialization_of, schema_columns
from sophia_dagster.dataplane.state import FlowState
from sophia_dagster.estuary.catalog import Catalog, iter_placeholders

logger = logging.getLogger(__name__)
HUBSPOT_CONNECTORS = frozenset({"source-hubspot-native"})
TOKEN_PATH = ("credentials", "access_token")
MIN_POLL_SECONDS = 10.0


@dataclass(frozen=True)
class HubSpotPlan:
    """A HubSpot capture and the warehouse bindings of its collections."""

    capture: str
    materialization: str | None
    objects: Mapping[int, CrmObject]
    bindings: tuple[TableBinding, ...]
    hard_delete: bool
    database: str
    schema: str

    @property
    def tasks(self) -> tuple[str, ...]:
        return (self.capture,) if self.materialization is None else (self.capture, self.materialization)


def token_variable(catalog: Catalog, capture: str) -> str | None:
    """The environment variable the capture's access token placeholder names (``HUBSPOT_ACCESS_TOKEN``)."""
    config = catalog.captures[capture].endpoint.connector.config
    token: Any = config
    for part in TOKEN_PATH:
        token = token.get(part) if isinstance(token, dict) else None
    return next((variable for variable, _ in iter_placeholders(token)), None)


def build_hubspot_plan(catalog: Catalog, capture: str, default_database: str, default_schema: str) -> HubSpotPlan:
    """The plan that runs HubSpot capture ``capture`` and the warehouse bindings reading its collections
    (in ``default_database``/``default_schema`` when the materialization's config names none)."""
    model = catalog.captures[capture]
    by_collection = {b.target: b.resource["name"] for b in model.bindings if not b.disable}
    name, materialization = materialization_of(catalog, set(by_collection))
    config = materialization.endpoint.connector.config if materialization else {}
    bindings, objects = [], {}
    for index, binding in enumerate(materialization.bindings if materialization else []):
        if binding.source_name not in by_collection or binding.disable:
            continue
        properties = catalog.collections[binding.source_name].document_schema.get("properties") or {}
        columns = schema_columns(properties)
        key = key_fields(catalog, binding.source_name)
        delta = bool(binding.resource.get("delta_updates"))
        bindings.append(TableBinding(index, binding.resource["table"], binding.source_name, key, delta, columns))
        objects[index] = CrmObject(by_collection[binding.source_name], binding.source_name)
    return HubSpotPlan(
        capture=capture,
        materialization=name,
        objects=objects,
        bindings=tuple(bindings),
        hard_delete=bool(config.get("hardDelete", False)),
        database=str(config.get("database", default_database)),
        schema=str(config.get("schema", default_schema)),
    )


class HubSpotPipeline:
    """Runs one HubSpot plan against HubSpot's API and a warehouse."""

    def __init__(
        self, plan: HubSpotPlan, capture: HubSpotCapture, snowflake: SnowflakeResource, state: FlowState
    ) -> None:
        self.plan = plan
        self.capture = capture
        self.snowflake = snowflake
        self.state = state
        self.materializer = Materializer(
            plan.materialization or plan.capture, plan.bindings, plan.hard_delete, staging_of=plan.capture
        )
        self.session_file = state.root / ("session-" + plan.capture.replace("/", "_") + ".json")

    def run(
        self,
        until_caught_up: bool = True,
        stop: threading.Event | None = None,
        poll_seconds: float = MIN_POLL_SECONDS,
        report: RunReport | None = None,
        **_: Any,
    ) -> RunReport:
        """Read every binding's changes into the warehouse once, or every ``poll_seconds`` (at least
        ``MIN_POLL_SECONDS``, within HubSpot's rate limits) until ``stop`` is set; ``report`` fills as it goes."""
        started, stop = time.monotonic(), stop or threading.Event()
        if not self.plan.bindings:
            raise DataPlaneError(f"no warehouse binding reads the collections of {self.plan.capture}: nothing to run")
        report = report or RunReport()
        with self.state.runner_lock(self.plan.capture) as owned:
            if not owned:
                raise DataPlaneError(f"{self.plan.capture} is running in another process; let it finish")
            sessions.roll_back_abandoned(self.snowflake, self.session_file)
            with data_plane_connection(self.snowflake) as conn:
                sessions.remember(conn, self.session_file)
                try:
                    self._loop(conn.cursor(), until_caught_up, stop, max(poll_seconds, MIN_POLL_SECONDS), report)
                finally:
                    sessions.forget(self.session_file)
        report.duration_seconds = time.monotonic() - started
        return report

    def close(self) -> None:
        self.capture.api.close()

    def _loop(self, cursor: Any, once: bool, stop: threading.Event, poll: float, report: RunReport) -> None:
        use_schema(cursor, self.plan.database, self.plan.schema)
        self.materializer.setup(cursor)
        for binding in self.plan.bindings:
            self.materializer.ensure_table(cursor, binding)
        while True:
            failures = self._pass(cursor, report)
            if failures:
                raise HubSpotError("; ".join(failures))
            if once or stop.wait(poll):
                return

    def _pass(self, cursor: Any, report: RunReport) -> list[str]:
        """One read of every binding; returns what HubSpot refused (the other bindings are written)."""
        stored = self.materializer.checkpoints(cursor)
        failures = []
        for binding in self.plan.bindings:
            crm = self.plan.objects[binding.index]
            try:
                known = stored.get(binding.table)
                batch = self.capture.backfill(crm) if known is None else self.capture.changes(crm, known)
            except HubSpotError as exc:
                failures.append(f"{self.plan.capture} {crm.name}: {exc}")
                continue
            self._commit(cursor, binding, batch, replace=known is None, report=report)
        return failures

    def _commit(self, cursor: Any, binding: TableBinding, batch: Batch, replace: bool, report: RunReport) -> None:
        self.materializer.stage(cursor, {binding.index: batch.documents})
        size = self.materializer.staged_bytes[binding.index]
        loads = {binding.index: Load(len(batch.documents), replace=replace)} if replace or batch.documents else {}
        self.materializer.commit(cursor, loads, {binding.table: batch.cursor}, datetime.now(UTC).isoformat())
        for doc in batch.documents:
            report.count(binding.collection, doc["_meta"]["op"])
        if replace:
            report.backfilled[binding.collection] = len(batch.documents)
        if batch.cursor:
            through = datetime.fromtimestamp(batch.cursor / 1000, UTC).isoformat().replace("+00:00", "Z")
            report.positions[binding.collection] = {"modified_through": through}
        report.commits += 1
        moved = {binding.collection: (len(batch.documents), size)}
        self.state.add_stats(self.plan.capture, moved, written=True)
        if self.plan.materialization:
            self.state.add_stats(self.plan.materialization, moved, written=False)
        logger.info("%s: %d documents of %s", self.plan.capture, len(batch.documents), binding.collection)

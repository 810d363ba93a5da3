"""``LocalDataPlane``: the data plane as an :class:`~sophia_dagster.estuary.runtime.EstuaryRuntime`, running the
catalog's PostgreSQL captures and Snowflake materializations in-process against the embedded source and warehouse.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import dagster as dg
import psycopg
import snowflake.connector
from pydantic import Field

from sophia_dagster.dataplane.capture import SESSION_SETUP
from sophia_dagster.dataplane.errors import CaptureError, DataPlaneError
from sophia_dagster.dataplane.pgoutput import lsn_to_str
from sophia_dagster.dataplane.pipeline import Pipeline, RunReport
from sophia_dagster.dataplane.plan import Plan, build_plan, runnable_reason
from sophia_dagster.dataplane.state import FlowState
from sophia_dagster.embedded.postgres import ensure_embedded_postgres
from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.estuary.errors import TaskNotReadyError
from sophia_dagster.estuary.models import BindingStats, PublishResult, TaskStats, TaskStatus
from sophia_dagster.estuary.runtime import EstuaryRuntime
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource


class LocalDataPlane(EstuaryRuntime):
    """Runs the Flow catalog on this machine with Estuary's semantics (pgoutput CDC -> warehouse, exactly once)."""

    state_dir: str = Field(description="Where the embedded engines and the data plane keep state")
    postgres_dsn: str | None = Field(
        default=None, description="Source PostgreSQL DSN (wal_level=logical); the embedded server when unset"
    )
    warehouse_database: str = Field(description="Warehouse database of a materialization whose config names none")
    warehouse_schema: str = Field(description="Warehouse schema of a materialization whose config names none")
    batch_messages: int = Field(default=50_000, description="pgoutput messages read per warehouse commit at most")

    # helpers -----------------------------------------------------------------------------------------------
    @property
    def flow_state(self) -> FlowState:
        return FlowState(Path(self.state_dir))

    def source_dsn(self) -> str:
        """The source DSN: the configured one, else the embedded server (started when needed)."""
        return self.postgres_dsn or ensure_embedded_postgres(Path(self.state_dir))

    def plan(self, task: str, catalog: Catalog | None = None) -> Plan:
        """The pipeline plan that runs ``task``; raises ``NotRunnableHereError`` when it cannot run here."""
        catalog = catalog or self.load_catalog()
        with psycopg.connect(self.source_dsn(), autocommit=True) as conn:
            conn.execute(SESSION_SETUP)
            return build_plan(
                catalog, task, conn, default_database=self.warehouse_database, default_schema=self.warehouse_schema
            )

    def pipeline(self, task: str) -> Pipeline:
        """A pipeline for ``task`` (close it after use)."""
        plan = self.plan(task)
        warehouse = embedded_snowflake_resource(Path(self.state_dir), plan.database, plan.schema)
        return Pipeline(plan, self.source_dsn(), warehouse, self.flow_state, self.batch_messages)

    def not_runnable_reason(self, task: str) -> str | None:
        """Why ``task`` cannot run in the embedded data plane (None when it can)."""
        return runnable_reason(self.load_catalog(), task)

    def run(self, task: str, until_caught_up: bool = True, **kwargs: object) -> RunReport:
        """Run ``task``'s pipeline until caught up (or continuously); records the outcome for ``status``."""
        if self.flow_state.task(task).get("disabled"):
            raise DataPlaneError(f"{task} is paused; resume it first")
        try:
            pipeline = self.pipeline(task)
        except (psycopg.Error, snowflake.connector.errors.Error) as exc:
            self.flow_state.record_run([task], str(exc))
            raise DataPlaneError(f"cannot start {task}: {exc}") from None
        try:
            report = pipeline.run(until_caught_up=until_caught_up, **kwargs)
        except (DataPlaneError, CaptureError, psycopg.Error, snowflake.connector.errors.Error) as exc:
            self.flow_state.record_run(list(pipeline.plan.tasks), str(exc))
            raise DataPlaneError(str(exc)) from None
        finally:
            pipeline.close()
        self.flow_state.record_run(list(pipeline.plan.tasks), None, report.lsn)
        return report

    # EstuaryRuntime ----------------------------------------------------------------------------------------
    def publish(self, names: Sequence[str] | None = None, *, dry_run: bool = False) -> PublishResult:
        """Validate the named tasks; unless ``dry_run``, create their publication and record a publication id."""
        catalog = self.load_catalog()
        names = list(names or catalog.tasks)
        for name in names:
            if name not in catalog.tasks:
                raise DataPlaneError(f"{name!r} is not a capture or materialization of the catalog")
            if runnable_reason(catalog, name):
                continue
            plan = self.plan(name, catalog)
            pipeline = Pipeline(
                plan,
                self.source_dsn(),
                embedded_snowflake_resource(Path(self.state_dir), plan.database, plan.schema),
                self.flow_state,
            )
            try:
                pipeline.capture.validate() if dry_run else pipeline.prepare()
            except CaptureError as exc:
                raise DataPlaneError(f"cannot publish {name}: {exc}") from None
            finally:
                pipeline.close()
        pub_id = "0" * 16 if dry_run else self.flow_state.publish(names)
        return PublishResult(pub_id=pub_id, status="success", dry_run=dry_run, names=names)

    def pause(self, name: str) -> PublishResult:
        self._known(name)
        return PublishResult(pub_id=self.flow_state.set_disabled(name, True), names=[name])

    def resume(self, name: str) -> PublishResult:
        self._known(name)
        return PublishResult(pub_id=self.flow_state.set_disabled(name, False), names=[name])

    def status(self, names: Sequence[str]) -> list[TaskStatus]:
        catalog = self.load_catalog()
        return [self._status(catalog, name) for name in names]

    def stats(self, names: Sequence[str], since: datetime) -> list[TaskStats]:
        rows = []
        for name in names:
            for hour, bucket in sorted(self.flow_state.stats(name).items()):
                ts = datetime.fromisoformat(hour)
                if ts.timestamp() + 3600 <= since.timestamp():
                    continue
                bindings = {c: BindingStats(**v) for c, v in bucket.get("bindings", {}).items()}
                counters = {k: v for k, v in bucket.items() if k != "bindings"}
                rows.append(TaskStats(catalog_name=name, ts=ts, bindings=bindings, **counters))
        return rows

    def wait_until_caught_up(self, names: Sequence[str], timeout_seconds: float) -> list[TaskStatus]:
        for name in names:
            try:
                self.run(name, wait_seconds=timeout_seconds)
            except DataPlaneError as exc:
                raise TaskNotReadyError(f"{name} is not caught up: {exc}") from None
        return self.status(names)

    def materialize(
        self, context: dg.AssetExecutionContext, task: str, selected: Mapping[dg.AssetKey, int]
    ) -> Iterator[dg.MaterializeResult]:
        """Run ``task``'s pipeline until caught up; report what each selected binding moved."""
        catalog = self.load_catalog()
        reason = runnable_reason(catalog, task)
        if reason:
            raise dg.Failure(description=reason, metadata={"estuary/runnable_here": False, "estuary/reason": reason})
        try:
            report = self.run(task, wait_seconds=self.caught_up_timeout_seconds)
        except DataPlaneError as exc:
            raise dg.Failure(description=str(exc)) from None
        context.log.info(
            f"{task} caught up at LSN {lsn_to_str(report.lsn)} in {report.duration_seconds:.1f}s "
            f"({dict(report.totals())})"
        )
        collections = catalog.collections_of(task)
        plan_collections = {b.collection for b in self.plan(task, catalog).bindings}
        skipped = []
        for key, index in selected.items():
            collection = collections[index]
            if collection not in plan_collections:
                skipped.append(f"{key.to_user_string()} ({collection})")
                continue
            yield dg.MaterializeResult(asset_key=key, metadata=_metadata(report, collection))
        if skipped:
            raise dg.Failure(
                description=f"not runnable in the embedded data plane (their captures need a SaaS source): {', '.join(skipped)}"
            )

    # internals ---------------------------------------------------------------------------------------------
    def _known(self, name: str) -> None:
        if name not in self.load_catalog().tasks:
            raise DataPlaneError(f"{name!r} is not a capture or materialization of the catalog")

    def _status(self, catalog: Catalog, name: str) -> TaskStatus:
        spec_type = catalog.spec_type(name)
        known = self.flow_state.task(name)
        common = {"catalog_name": name, "spec_type": spec_type, "last_pub_id": known.get("last_pub_id")}
        if spec_type == "collection":
            return TaskStatus(**common, status="ok", message="collection")
        reason = runnable_reason(catalog, name)
        if reason:
            return TaskStatus(**common, status="warning", message=f"not runnable here: {reason}")
        if known.get("disabled"):
            return TaskStatus(**common, status="taskDisabled", message="task shards are disabled", disabled=True)
        if known.get("error"):
            return TaskStatus(
                **common,
                status="error",
                message=known["error"],
                controller_error=known["error"],
                controller_failures=known.get("failures", 0),
            )
        if "lsn" not in known:
            return TaskStatus(**common, status="warning", message="not run yet in the embedded data plane")
        return TaskStatus(
            **common, status="ok", message=f"caught up to LSN {lsn_to_str(known['lsn'])} at {known['last_run']}"
        )


def _metadata(report: RunReport, collection: str) -> dict[str, dg.MetadataValue]:
    counts = report.counts.get(collection, {})
    return {
        "estuary/collection": dg.MetadataValue.text(collection),
        "rows_inserted": dg.MetadataValue.int(counts.get("inserted", 0)),
        "rows_updated": dg.MetadataValue.int(counts.get("updated", 0)),
        "rows_deleted": dg.MetadataValue.int(counts.get("deleted", 0)),
        "rows_backfilled": dg.MetadataValue.int(report.backfilled.get(collection, 0)),
        "lsn": dg.MetadataValue.text(lsn_to_str(report.lsn)),
        "lag_bytes": dg.MetadataValue.int(report.lag_bytes),
        "duration_seconds": dg.MetadataValue.float(round(report.duration_seconds, 3)),
        "ran_in_this_process": dg.MetadataValue.bool(report.ran_here),
    }

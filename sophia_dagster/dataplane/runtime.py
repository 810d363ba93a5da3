"""``LocalDataPlane``: the data plane as an :class:`~sophia_dagster.estuary.runtime.EstuaryRuntime`, running the
catalog's PostgreSQL and HubSpot captures, the SQLite derivations of PostgreSQL captures and Snowflake materializations
in-process against the embedded source and warehouse.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import snowflake.connector
from pydantic import Field

from sophia_dagster.dataplane.capture import SESSION_SETUP
from sophia_dagster.dataplane.errors import DataPlaneError, NotRunnableHereError
from sophia_dagster.dataplane.hubspot import DEFAULT_API_URL, HubSpotApi, HubSpotCapture, HubSpotError
from sophia_dagster.dataplane.hubspot_pipeline import HubSpotPipeline, build_hubspot_plan, token_variable
from sophia_dagster.dataplane.identifiers import ident
from sophia_dagster.dataplane.pgoutput import lsn_to_str
from sophia_dagster.dataplane.pipeline import Pipeline, RunReport
from sophia_dagster.dataplane.plan import HUBSPOT_CONNECTORS, Plan, build_plan, captures_of, runnable_reason
from sophia_dagster.dataplane.state import FlowState
from sophia_dagster.embedded.postgres import ensure_embedded_postgres
from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.estuary.errors import TaskNotReadyError
from sophia_dagster.estuary.metadata import EstuaryMetadataSet
from sophia_dagster.estuary.models import BindingStats, PublishResult, TaskStats, TaskStatus
from sophia_dagster.estuary.runtime import EstuaryRuntime
from sophia_dagster.estuary.translator import reported_collections
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource


class LocalDataPlane(EstuaryRuntime):
    """Runs the Flow catalog on this machine with Estuary's semantics (pgoutput CDC -> warehouse, exactly once).

    HubSpot captures run against HubSpot's API when the variable their catalog's access-token placeholder
    names (``${HUBSPOT_ACCESS_TOKEN}``) is set; otherwise they are not run, with a warning naming it.
    """

    state_dir: str = Field(description="Where the embedded engines and the data plane keep state")
    postgres_dsn: str | None = Field(
        default=None, description="Source PostgreSQL DSN (wal_level=logical); the embedded server when unset"
    )
    embedded_source_setup: str | None = Field(
        default=None,
        description="'module:function' called with the embedded server's DSN before it is used (e.g. to create "
        "and seed the captured tables), so whichever asset runs first finds the source ready",
    )
    warehouse_database: str = Field(description="Warehouse database of a materialization whose config names none")
    warehouse_schema: str = Field(description="Warehouse schema of a materialization whose config names none")
    hubspot_api_url: str = Field(default=DEFAULT_API_URL, description="HubSpot's API base URL")
    batch_messages: int = Field(default=50_000, description="pgoutput messages read per warehouse commit at most")

    # helpers -----------------------------------------------------------------------------------------------
    @property
    def flow_state(self) -> FlowState:
        return FlowState(Path(self.state_dir))

    def source_dsn(self) -> str:
        """The source DSN: the configured one, else the embedded server (started and set up when needed)."""
        if self.postgres_dsn:
            return self.postgres_dsn
        dsn = ensure_embedded_postgres(Path(self.state_dir))
        if self.embedded_source_setup:
            module, _, function = self.embedded_source_setup.partition(":")
            getattr(importlib.import_module(module), function)(dsn)
        return dsn

    def plan(self, task: str, catalog: Catalog | None = None) -> Plan:
        """The plan of the PostgreSQL capture ``task`` is or reads from; raises ``DataPlaneError`` otherwise."""
        catalog = catalog or self.load_catalog()
        postgres = [c for c in captures_of(catalog, task) if not self._is_hubspot(catalog, c)]
        if not postgres:
            raise DataPlaneError(f"{task} reads from no PostgreSQL capture that runs here")
        try:
            with psycopg.connect(self.source_dsn(), autocommit=True) as conn:
                conn.execute(SESSION_SETUP)
                return build_plan(
                    catalog,
                    postgres[0],
                    conn,
                    default_database=self.warehouse_database,
                    default_schema=self.warehouse_schema,
                )
        except NotRunnableHereError as exc:
            raise DataPlaneError(str(exc)) from None

    def pipeline(self, task: str) -> Pipeline:
        """The PostgreSQL pipeline of ``task`` (close it after use)."""
        plan = self.plan(task)
        warehouse = embedded_snowflake_resource(Path(self.state_dir), plan.database, plan.schema)
        return Pipeline(plan, self.source_dsn(), warehouse, self.flow_state, self.batch_messages)

    def not_runnable_reason(self, task: str) -> str | None:
        """Why ``task`` cannot run in the embedded data plane (None when it can)."""
        catalog = self.load_catalog()
        return runnable_reason(catalog, task) or (
            self.hubspot_unavailable(catalog, task) if task in catalog.captures else None
        )

    def hubspot_unavailable(self, catalog: Catalog, capture: str) -> str | None:
        """Why HubSpot capture ``capture`` does not run here (its token variable is unset), else None."""
        if not self._is_hubspot(catalog, capture):
            return None
        variable = token_variable(catalog, capture)
        if variable and os.environ.get(variable):
            return None
        return (
            f"{variable or 'the access token'} is not set: HubSpot capture {capture} was not run (nothing is made up); "
            f"set {variable or 'credentials.access_token'} to a HubSpot private app token to capture it"
        )

    def runnable_captures(self, task: str, collections: set[str] | None = None) -> tuple[list[str], dict[str, str]]:
        """The captures ``task`` runs (those feeding ``collections`` when given) and why others are left out."""
        catalog = self.load_catalog()
        if reason := runnable_reason(catalog, task):
            raise DataPlaneError(reason)
        run, skipped = [], {}
        wanted = (
            None if collections is None else {*collections, *(s for c in collections for s in _sources(catalog, c))}
        )
        for capture in captures_of(catalog, task):
            if wanted is not None and not wanted & set(catalog.collections_of(capture)):
                continue
            if reason := self.hubspot_unavailable(catalog, capture):
                skipped[capture] = reason
            else:
                run.append(capture)
        return run, skipped

    def run(
        self, task: str, until_caught_up: bool = True, captures: list[str] | None = None, **kwargs: Any
    ) -> RunReport:
        """Run the pipelines of ``task`` (or of ``captures`` only) until caught up, or continuously.

        Several captures (a materialization fed by PostgreSQL and HubSpot) run side by side; the outcome is
        recorded for ``status`` and what moved is kept for the assets' next report.
        """
        if self.flow_state.task(task).get("disabled"):
            raise DataPlaneError(f"{task} is paused; resume it first")
        names = captures if captures is not None else self.runnable_captures(task)[0]
        if not names:
            raise DataPlaneError(f"{task}: no capture feeding it can run here")
        if len(names) == 1:
            return self._run_one(names[0], until_caught_up, **kwargs)
        with ThreadPoolExecutor(len(names)) as pool:
            futures = [pool.submit(self._run_one, name, until_caught_up, **kwargs) for name in names]
            return RunReport.merged([future.result() for future in futures])

    def _run_one(self, capture: str, until_caught_up: bool, **kwargs: Any) -> RunReport:
        try:
            pipeline = self._pipeline_of(capture)
        except (psycopg.Error, snowflake.connector.errors.Error) as exc:
            self.flow_state.record_run([capture], str(exc))
            raise DataPlaneError(f"cannot start {capture}: {exc}") from None
        try:
            report = pipeline.run(until_caught_up=until_caught_up, **kwargs)
        except (DataPlaneError, HubSpotError, psycopg.Error, snowflake.connector.errors.Error) as exc:
            self.flow_state.record_run(list(pipeline.plan.tasks), str(exc))
            raise DataPlaneError(str(exc)) from None
        finally:
            pipeline.close()
        self.flow_state.record_run(list(pipeline.plan.tasks), None, report.lsn or None)
        self.flow_state.add_moved(pipeline.plan.tasks, report.moved())
        return report

    def _pipeline_of(self, capture: str) -> Pipeline | HubSpotPipeline:
        catalog = self.load_catalog()
        if not self._is_hubspot(catalog, capture):
            return self.pipeline(capture)
        plan = build_hubspot_plan(catalog, capture, self.warehouse_database, self.warehouse_schema)
        variable = token_variable(catalog, capture) or "the HubSpot access token"
        api = HubSpotApi(os.environ.get(variable, ""), self.hubspot_api_url, token_name=variable)
        warehouse = embedded_snowflake_resource(Path(self.state_dir), plan.database, plan.schema)
        return HubSpotPipeline(plan, HubSpotCapture(api), warehouse, self.flow_state)

    @staticmethod
    def _is_hubspot(catalog: Catalog, capture: str) -> bool:
        return capture in catalog.captures and catalog.captures[capture].endpoint.connector.name in HUBSPOT_CONNECTORS

    # EstuaryRuntime ----------------------------------------------------------------------------------------
    def publish(self, names: Sequence[str] | None = None, *, dry_run: bool = False) -> PublishResult:
        """Validate the named tasks; unless ``dry_run``, create their publication and record a publication id."""
        catalog = self.load_catalog()
        names = list(names or catalog.tasks)
        for name in names:
            if name not in catalog.tasks:
                raise DataPlaneError(f"{name!r} is not a capture or materialization of the catalog")
            if runnable_reason(catalog, name) or self._is_hubspot(catalog, name):
                continue
            plan = self.plan(name, catalog)
            pipeline = Pipeline(
                plan,
                self.source_dsn(),
                embedded_snowflake_resource(Path(self.state_dir), plan.database, plan.schema),
                self.flow_state,
            )
            try:
                pipeline.validate() if dry_run else pipeline.prepare()
            except DataPlaneError as exc:
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
        """Run the captures feeding the selected bindings until caught up; report what each binding moved.

        Bindings whose capture cannot run here (HubSpot without its token) are not reported, with a warning
        naming why: they show as not materialized, and the other bindings succeed. A derivation runs with the
        capture of its sources and reports what it wrote into its collection; one that cannot run here is not
        materialized either, with a warning saying why.
        """
        catalog = self.load_catalog()
        if task in catalog.derivations and (reason := runnable_reason(catalog, task)):
            context.log.warning(f"{reason} It was not run here.")
            return
        collections = reported_collections(catalog, task)
        wanted = {key: collections[index] for key, index in selected.items()}
        try:
            captures, skipped = self.runnable_captures(task, set(wanted.values()))
        except DataPlaneError as exc:
            raise dg.Failure(
                description=str(exc), metadata={**EstuaryMetadataSet(runnable_here=False, reason=str(exc))}
            ) from None
        for reason in skipped.values():
            context.log.warning(reason)
        left_out = {c for capture in skipped for c in self.load_catalog().collections_of(capture)}
        if not captures:
            return
        try:
            report = self.run(task, captures=captures, wait_seconds=self.caught_up_timeout_seconds)
        except DataPlaneError as exc:
            raise dg.Failure(description=str(exc)) from None
        context.log.info(f"{task} caught up in {report.duration_seconds:.1f}s ({dict(report.totals())})")
        reported = {key: collection for key, collection in wanted.items() if collection not in left_out}
        moved = self.flow_state.take_moved(task, set(reported.values()))
        rows = self.row_counts(task, set(reported.values()))
        for key, collection in reported.items():
            yield dg.MaterializeResult(
                asset_key=key,
                metadata=run_metadata(report, collection, moved.get(collection, {}), rows.get(collection)),
            )

    def row_counts(self, task: str, collections: set[str]) -> dict[str, int]:
        """Rows of the warehouse table of each collection (a collection counts the keys its table holds)."""
        catalog = self.load_catalog()
        tables: dict[str, tuple[str, str, str]] = {}
        for name, materialization in catalog.materializations.items():
            if runnable_reason(catalog, name):
                continue
            config = materialization.endpoint.connector.config
            for binding in materialization.bindings:
                if binding.source_name in collections and (name == task or task not in catalog.materializations):
                    place = (
                        str(config.get("database", self.warehouse_database)),
                        str(config.get("schema", self.warehouse_schema)),
                    )
                    tables.setdefault(binding.source_name, (*place, binding.resource["table"]))
        if not tables:
            return {}
        counts = " UNION ALL ".join(
            f"SELECT %s, COUNT(*) FROM {db}.{schema}.{ident(table)}" for db, schema, table in tables.values()
        )
        with embedded_snowflake_resource(Path(self.state_dir)).get_connection() as conn:
            cursor = conn.cursor()
            cursor.execute(counts, list(tables))
            return {collection: int(n) for collection, n in cursor.fetchall()}

    # internals ---------------------------------------------------------------------------------------------
    def _known(self, name: str) -> None:
        if name not in self.load_catalog().tasks:
            raise DataPlaneError(f"{name!r} is not a capture or materialization of the catalog")

    def _status(self, catalog: Catalog, name: str) -> TaskStatus:
        spec_type = catalog.spec_type(name)
        known = self.flow_state.task(name)
        common = {"catalog_name": name, "spec_type": spec_type, "last_pub_id": known.get("last_pub_id")}
        if spec_type == "collection" and name not in catalog.derivations:
            return TaskStatus(**common, status="ok", message="collection")
        reason = runnable_reason(catalog, name) or self.hubspot_unavailable(catalog, name)
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
        if "last_run" not in known:
            return TaskStatus(**common, status="warning", message="not run yet in the embedded data plane")
        where = f"to LSN {lsn_to_str(known['lsn'])} " if "lsn" in known else ""
        return TaskStatus(**common, status="ok", message=f"caught up {where}at {known['last_run']}")


def _sources(catalog: Catalog, collection: str) -> list[str]:
    """The collections a derived ``collection`` reads (none for a captured one)."""
    return catalog.collections_of(collection) if collection in catalog.derivations else []


def run_metadata(
    report: RunReport, collection: str, moved: Mapping[str, int], row_count: int | None
) -> dict[str, dg.MetadataValue]:
    """What one asset's materialization reports: the rows moved into it since its last report, its row count
    and where the capture stands (every key the embedded data plane reports is here)."""
    metadata = {
        **EstuaryMetadataSet(
            collection=collection,
            rows_inserted=moved.get("inserted", 0),
            rows_updated=moved.get("updated", 0),
            rows_deleted=moved.get("deleted", 0),
            rows_backfilled=moved.get("backfilled", 0),
            duration_seconds=round(report.duration_seconds, 3),
            **report.positions.get(collection, {}),
        )
    }
    if row_count is not None:
        metadata["dagster/row_count"] = dg.MetadataValue.int(row_count)
    return metadata

"""Asset checks on the warehouse tables Estuary writes: parity with the source, key uniqueness, foreign keys,
schema drift and change volume. Each names what is wrong and says what to do next in its metadata."""


from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from dagster_snowflake import SnowflakeResource

from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.governance import anomaly, drift, integrity, parity
from sophia_dagster.governance.config import GovernanceConfig
from sophia_dagster.governance.history import check_history
from sophia_dagster.governance.parity import Query
from sophia_dagster.governance.tables import GovernedTable, quote
from sophia_dagster.postgres_source import SourcePostgres

PARITY, UNIQUENESS, FOREIGN_KEYS, DRIFT, VOLUME = (
    "parity", "key_uniqueness", "foreign_keys", "schema_drift", "volume_anomaly"
)
TABLE_CHECK_NAMES = (PARITY, UNIQUENESS, FOREIGN_KEYS, DRIFT, VOLUME)


@contextmanager
def warehouse_query(snowflake: SnowflakeResource) -> Iterator[Query]:
    """A `Query` over one warehouse connection."""
    with snowflake.get_connection() as conn:
        cursor = conn.cursor()

        def run(sql: str) -> list[tuple[Any, ...]]:
            cursor.execute(sql)
            return cursor.fetchall()

        yield run


@contextmanager
def source_query(source: SourcePostgres) -> Iterator[Query]:
    """A `Query` over one source PostgreSQL connection."""
    with source.connect() as conn:
        yield lambda sql: conn.execute(sql).fetchall()


def _result(table: GovernedTable, name: str, passed: bool, severity: dg.AssetCheckSeverity, summary: str,
            next_step: str, **metadata: Any) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=table.key,
        check_name=name,
        passed=passed,
        severity=severity,
        description=summary,
        metadata={"summary": summary, "next_step": "nothing to do" if passed else next_step, **metadata},
    )


def parity_result(table: GovernedTable, found: parity.ParityResult, config: GovernanceConfig) -> dg.AssetCheckResult:
    """The parity check's result: counts, differing keys and up to 20 sample keys (never row values)."""
    bound = "" if found.complete else "at least "
    summary = (
        f"{table.name}: source {found.source_rows} live rows, warehouse {found.warehouse_rows}; "
        f"{bound}{found.differing_keys} keys differ in {found.differing_buckets} of {found.buckets} buckets"
    )
    return _result(
        table, PARITY, found.passed, config.parity.dagster_severity, summary,
        "Compare the task's status and logs; re-run the materialization, or reset the capture to backfill "
        "(sophia-flow reset) when keys are missing.",
        source_rows=found.source_rows,
        warehouse_rows=found.warehouse_rows,
        differing_keys=found.differing_keys,
        differing_keys_exact=found.complete,
        missing_in_warehouse=len(found.missing_in_warehouse),
        extra_in_warehouse=len(found.extra_in_warehouse),
        sample_keys=dg.MetadataValue.json(found.sample_keys(config.parity.sample_keys)),
        buckets=found.buckets,
        differing_buckets=found.differing_buckets,
    )


def run_parity(table: GovernedTable, source: Query, warehouse: Query, config: GovernanceConfig) -> dg.AssetCheckResult:
    """Compare ``table`` with its source table, bucketed checksums computed in each database."""
    assert table.source is not None
    found = parity.compare(
        parity.ParitySide(source, parity.POSTGRES, table.source.sql, [f'"{f}"' for f in table.key_fields]),
        parity.ParitySide(warehouse, parity.SNOWFLAKE, table.sql, [quote(f) for f in table.key_fields], table.live()),
        rows_per_bucket=config.parity.rows_per_bucket,
        max_drill_buckets=config.parity.max_drill_buckets,
    )
    return parity_result(table, found, config)


def run_uniqueness(table: GovernedTable, warehouse: Query, config: GovernanceConfig) -> dg.AssetCheckResult:
    """One row per key and no NULL key."""
    found = integrity.check_uniqueness(warehouse, table)
    summary = (
        f"{table.name}: {found.rows} rows, {found.duplicated_keys} keys held by more than one row, "
        f"{found.null_keys} rows with a NULL key"
    )
    return _result(
        table, UNIQUENESS, found.passed, config.uniqueness.dagster_severity, summary,
        "A standard-updates table keeps one row per collection key: find who writes to it besides the "
        "materialization, then re-backfill the binding.",
        rows=found.rows, duplicated_keys=found.duplicated_keys, null_keys=found.null_keys,
        sample_keys=dg.MetadataValue.json(found.sample_keys),
    )


def run_foreign_keys(
    table: GovernedTable, tables: Sequence[GovernedTable], source: Any, warehouse: Query, config: GovernanceConfig
) -> dg.AssetCheckResult:
    """Every source foreign key of ``table`` whose parent is also governed holds among live warehouse rows."""
    assert table.source is not None
    by_source = {t.source: t for t in tables if t.source is not None}
    checked, broken, samples = [], [], {}
    for fk in integrity.source_foreign_keys(source, table.source):
        parent = by_source.get(fk.parent)
        if parent is None:
            continue
        orphans = integrity.check_foreign_key(warehouse, table, parent, fk, config.foreign_keys.sample_keys)
        checked.append(fk.describe())
        if orphans.count:
            broken.append(f"{fk.describe()}: {orphans.count} rows")
            samples[fk.describe()] = orphans.sample_keys
    summary = f"{table.name}: " + (
        f"{len(broken)} of {len(checked)} foreign keys broken: {'; '.join(broken)}" if broken
        else f"{len(checked)} foreign keys hold" if checked else "the source declares no foreign keys"
    )
    return _result(
        table, FOREIGN_KEYS, not broken, config.foreign_keys.dagster_severity, summary,
        "Rows reference parents the warehouse lacks: check the parent table's parity, then its materialization.",
        foreign_keys=dg.MetadataValue.json(checked), broken=dg.MetadataValue.json(broken),
        sample_keys=dg.MetadataValue.json(samples),
    )


def run_drift(table: GovernedTable, catalog: Catalog, source: Any | None, warehouse: Query,
              config: GovernanceConfig) -> dg.AssetCheckResult:
    """Source columns and warehouse columns vs the collection schema, named one by one."""
    properties = catalog.collections[table.collection].document_schema.get("properties") or {}
    sides = [("warehouse", drift.compare_columns(drift.warehouse_columns(warehouse, table), properties))]
    if source is not None and table.source is not None:
        sides.insert(0, ("source", drift.compare_columns(drift.source_columns(source, table.source), properties)))
    lines = drift.drift_lines(sides)
    summary = f"{table.name}: " + (f"{len(lines)} differences from {table.collection}" if lines else "no drift")
    return _result(
        table, DRIFT, not lines, config.schema_drift.dagster_severity, summary,
        f"Update the collection schema of {table.collection} in the catalog (or the source), then publish.",
        differences=dg.MetadataValue.json(lines),
    )


def change_volume(warehouse: Query, table: GovernedTable, now: datetime) -> tuple[int, datetime | None]:
    """Rows written in the 24 hours before ``now``, and the newest write."""
    since = (now - timedelta(hours=24)).isoformat()
    ((rows, newest),) = warehouse(
        f"SELECT COUNT_IF(flow_published_at >= CAST('{since}' AS TIMESTAMP_TZ)), MAX(flow_published_at) "
        f"FROM {table.sql}"
    )
    return int(rows or 0), newest


def volume_history(instance: dg.DagsterInstance, table: GovernedTable, days: int) -> list[tuple[date, int]]:
    """``(day, rows changed)`` from the check's earlier results."""
    found = []
    for record in check_history(instance, dg.AssetCheckKey(table.key, VOLUME), limit=days * 24):
        day, rows = record.metadata.get("volume_day"), record.metadata.get("rows_changed_24h")
        if isinstance(day, str) and isinstance(rows, int):
            found.append((date.fromisoformat(day), rows))
    return sorted(found)


def run_volume(table: GovernedTable, warehouse: Query, instance: dg.DagsterInstance, config: GovernanceConfig,
               now: datetime | None = None) -> dg.AssetCheckResult:
    """Today's change volume against the table's own history (robust z-score)."""
    now = now or datetime.now(UTC)
    settings = config.volume_anomaly
    rows, newest = change_volume(warehouse, table, now)
    verdict = anomaly.score(rows, volume_history(instance, table, settings.history_days), now.date(),
                            settings.z_threshold, settings.min_history_days, settings.history_days)
    lag = (now - newest).total_seconds() if isinstance(newest, datetime) else None
    return _result(
        table, VOLUME, not verdict.anomalous, settings.dagster_severity,
        f"{table.name}: {verdict.summary(settings.min_history_days)}",
        "Look at what changed in the source in the last 24 h (a bulk job, a migration, a stalled capture).",
        volume_day=now.date().isoformat(),
        rows_changed_24h=rows,
        baseline_days=verdict.history_days,
        baseline_median=verdict.median if verdict.median is not None else dg.MetadataValue.null(),
        baseline_mad=verdict.mad if verdict.mad is not None else dg.MetadataValue.null(),
        robust_z=dg.MetadataValue.null() if verdict.z_score is None else round(verdict.z_score, 3),
        learning=verdict.learning,
        last_write_age_seconds=dg.MetadataValue.null() if lag is None else round(lag, 1),
    )


CheckBody = Callable[..., dg.AssetCheckResult]


def _check(table: GovernedTable, name: str, description: str, blocking: bool,
           body: Callable[[dg.AssetCheckExecutionContext, SourcePostgres, SnowflakeResource], dg.AssetCheckResult]
           ) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=table.key, name=name, description=description, blocking=blocking)
    def _run(context: dg.AssetCheckExecutionContext, source_postgres: SourcePostgres,
             snowflake: SnowflakeResource) -> dg.AssetCheckResult:
        return body(context, source_postgres, snowflake)

    return _run


def build_table_checks(catalog: Catalog, tables: Sequence[GovernedTable], config: GovernanceConfig
                       ) -> list[dg.AssetChecksDefinition]:
    """Every table check of every governed table.

    Parity and foreign keys need a source table (CDC tables only); uniqueness needs one row per key
    (standard updates, not delta tables). Parity and uniqueness are blocking: an analytics model does
    not rebuild over a table that failed them.

    Args:
        catalog: the Estuary catalog (collection schemas).
        tables: the governed tables (see ``governed_tables``).
        config: thresholds and severities.

    Example:
        >>> build_table_checks(catalog, governed_tables(catalog), load_governance_config(path))
    """
    checks = []
    for table in tables:
        def parity_body(ctx, src, wh, table=table):
            with source_query(src) as s, warehouse_query(wh) as w:
                return run_parity(table, s, w, config)

        def unique_body(ctx, src, wh, table=table):
            with warehouse_query(wh) as w:
                return run_uniqueness(table, w, config)

        def fk_body(ctx, src, wh, table=table):
            with src.connect() as conn, warehouse_query(wh) as w:
                return run_foreign_keys(table, tables, conn, w, config)

        def drift_body(ctx, src, wh, table=table):
            with warehouse_query(wh) as w:
                if table.source is None:
                    return run_drift(table, catalog, None, w, config)
                with src.connect() as conn:
                    return run_drift(table, catalog, conn, w, config)

        def volume_body(ctx, src, wh, table=table):
            with warehouse_query(wh) as w:
                return run_volume(table, w, ctx.instance, config)

        if table.source is not None:
            checks.append(_check(table, PARITY, "Source and warehouse hold the same live keys", True, parity_body))
            checks.append(_check(table, FOREIGN_KEYS, "The source's foreign keys hold in the warehouse", False, fk_body))
        if not table.delta:
            checks.append(_check(table, UNIQUENESS, "One row per collection key, no NULL key", True, unique_body))
        checks.append(_check(table, DRIFT, "Columns match the collection schema", False, drift_body))
        checks.append(_check(table, VOLUME, "Daily change volume within the table's own baseline", False, volume_body))
    return checks

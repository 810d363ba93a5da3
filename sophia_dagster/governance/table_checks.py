"""Asset checks on the warehouse tables Estuary writes: parity with the source, key uniqueness, foreign keys,
schema drift and change volume. Each names what is wrong and says what to do next in its metadata."""

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
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
    "parity",
    "key_uniqueness",
    "foreign_keys",
    "schema_drift",
    "volume_anomaly",
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


def _result(
    table: GovernedTable,
    name: str,
    passed: bool,
    severity: dg.AssetCheckSeverity,
    summary: str,
    next_step: str,
    **metadata: Any,
) -> dg.AssetCheckResult:
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
        table,
        PARITY,
        found.passed,
        config.parity.dagster_severity,
        summary,
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
        table,
        UNIQUENESS,
        found.passed,
        config.uniqueness.dagster_severity,
        summary,
        "A standard-updates table keeps one row per collection key: find who writes to it besides the "
        "materialization, then re-backfill the binding.",
        rows=found.rows,
        duplicated_keys=found.duplicated_keys,
        null_keys=found.null_keys,
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
        f"{len(broken)} of {len(checked)} foreign keys broken: {'; '.join(broken)}"
        if broken
        else f"{len(checked)} foreign keys hold"
        if checked
        else "the source declares no foreign keys"
    )
    return _result(
        table,
        FOREIGN_KEYS,
        not broken,
        config.foreign_keys.dagster_severity,
        summary,
        "Rows reference parents the warehouse lacks: check the parent table's parity, then its materialization.",
        foreign_keys=dg.MetadataValue.json(checked),
        broken=dg.MetadataValue.json(broken),
        sample_keys=dg.MetadataValue.json(samples),
    )


def run_drift(
    table: GovernedTable, catalog: Catalog, source: Any | None, warehouse: Query, config: GovernanceConfig
) -> dg.AssetCheckResult:
    """Source columns and warehouse columns vs the collection schema, named one by one."""
    properties = catalog.collections[table.collection].document_schema.get("properties") or {}
    sides = [("warehouse", drift.compare_columns(drift.warehouse_columns(warehouse, table), properties))]
    if source is not None and table.source is not None:
        sides.insert(0, ("source", drift.compare_columns(drift.source_columns(source, table.source), properties)))
    lines = drift.drift_lines(sides)
    summary = f"{table.name}: " + (f"{len(lines)} differences from {table.collection}" if lines else "no drift")
    return _result(
        table,
        DRIFT,
        not lines,
        config.schema_drift.dagster_severity,
        summary,
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


def run_volume(
    table: GovernedTable,
    warehouse: Query,
    instance: dg.DagsterInstance,
    config: GovernanceConfig,
    now: datetime | None = None,
) -> dg.AssetCheckResult:
    """Today's change volume against the table's own history (robust z-score)."""
    now = now or datetime.now(UTC)
    settings = config.volume_anomaly
    rows, newest = change_volume(warehouse, table, now)
    verdict = anomaly.score(
        rows,
        volume_history(instance, table, settings.history_days),
        now.date(),
        settings.z_threshold,
        settings.min_history_days,
        settings.history_days,
    )
    lag = (now - newest).total_seconds() if isinstance(newest, datetime) else None
    return _result(
        table,
        VOLUME,
        not verdict.anomalous,
        settings.dagster_severity,
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


def table_check_specs(table: GovernedTable) -> list[dg.AssetCheckSpec]:
    """The checks that apply to ``table``: parity and foreign keys need a source table (CDC tables),
    uniqueness needs one row per key (not delta tables). Parity and uniqueness are blocking."""
    specs = []
    if table.source is not None:
        specs.append(
            dg.AssetCheckSpec(
                PARITY, asset=table.key, blocking=True, description="Source and warehouse hold the same live keys"
            )
        )
        specs.append(
            dg.AssetCheckSpec(
                FOREIGN_KEYS, asset=table.key, description="The source's foreign keys hold in the warehouse"
            )
        )
    if not table.delta:
        specs.append(
            dg.AssetCheckSpec(
                UNIQUENESS, asset=table.key, blocking=True, description="One row per collection key, no NULL key"
            )
        )
    specs.append(dg.AssetCheckSpec(DRIFT, asset=table.key, description="Columns match the collection schema"))
    specs.append(
        dg.AssetCheckSpec(VOLUME, asset=table.key, description="Daily change volume within the table's own baseline")
    )
    return specs


def run_table_check(
    name: str,
    table: GovernedTable,
    tables: Sequence[GovernedTable],
    catalog: Catalog,
    source: Any | None,
    warehouse: Query,
    instance: dg.DagsterInstance,
    config: GovernanceConfig,
) -> dg.AssetCheckResult:
    """Run the check called ``name`` on ``table`` (``source`` is a psycopg connection, None for SaaS tables)."""
    if name == PARITY:
        return run_parity(table, lambda sql: source.execute(sql).fetchall(), warehouse, config)
    if name == FOREIGN_KEYS:
        return run_foreign_keys(table, tables, source, warehouse, config)
    if name == UNIQUENESS:
        return run_uniqueness(table, warehouse, config)
    if name == DRIFT:
        return run_drift(table, catalog, source, warehouse, config)
    return run_volume(table, warehouse, instance, config)


def build_table_check(
    catalog: Catalog, table: GovernedTable, tables: Sequence[GovernedTable], config: GovernanceConfig
) -> dg.AssetChecksDefinition:
    """Every check of one table in one step, sharing one source and one warehouse connection.

    Args:
        catalog: the Estuary catalog (collection schemas).
        table: the table judged.
        tables: every governed table (foreign keys point at them).
        config: thresholds and severities.

    Example:
        >>> build_table_check(catalog, governed_tables(catalog)[0], governed_tables(catalog), config)
    """

    @dg.multi_asset_check(
        name=f"{'__'.join(table.key.path)}_governance", specs=table_check_specs(table), can_subset=True
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, source_postgres: SourcePostgres, snowflake: SnowflakeResource
    ) -> Iterator[dg.AssetCheckResult]:
        with ExitStack() as stack:
            warehouse = stack.enter_context(warehouse_query(snowflake))
            source = stack.enter_context(source_postgres.connect()) if table.source is not None else None
            for key in sorted(context.selected_asset_check_keys, key=lambda k: k.name):
                yield run_table_check(key.name, table, tables, catalog, source, warehouse, context.instance, config)

    return _checks


def build_table_checks(
    catalog: Catalog, tables: Sequence[GovernedTable], config: GovernanceConfig
) -> list[dg.AssetChecksDefinition]:
    """One check definition per governed table (see ``build_table_check``)."""
    return [build_table_check(catalog, table, tables, config) for table in tables]

"""Each table check against the real engines fails for the right reason, then passes once the fault is fixed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from sophia_dagster.governance.pipelines import task_health
from sophia_dagster.governance.table_checks import (
    VOLUME,
    run_drift,
    run_foreign_keys,
    run_parity,
    run_uniqueness,
    run_volume,
)
from tests.governance.conftest import TASK, World


def _some_key(world: World, table: str) -> int:
    with world.source() as conn:
        return conn.execute(f"SELECT id FROM {table} ORDER BY id LIMIT 1 OFFSET 7").fetchone()[0]


def test_parity_names_the_table_the_count_and_the_deleted_key(world: World) -> None:
    deals = world.tables["deals"]
    key = _some_key(world, "deals")
    with world.queries() as (source, warehouse):
        assert run_parity(deals, source, warehouse, world.config).passed
        warehouse(f"CREATE OR REPLACE TABLE SOPHIA.RAW.DEALS_KEPT AS SELECT * FROM SOPHIA.RAW.DEALS WHERE ID = {key}")
        warehouse(f"DELETE FROM SOPHIA.RAW.DEALS WHERE ID = {key}")
        try:
            failed = run_parity(deals, source, warehouse, world.config)
        finally:
            warehouse("INSERT INTO SOPHIA.RAW.DEALS SELECT * FROM SOPHIA.RAW.DEALS_KEPT")
            warehouse("DROP TABLE SOPHIA.RAW.DEALS_KEPT")
        fixed = run_parity(deals, source, warehouse, world.config)
    meta = {k: v.value for k, v in failed.metadata.items()}
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert "snowflake/sophia/raw/deals" in meta["summary"]
    assert meta["warehouse_rows"] == meta["source_rows"] - 1
    assert meta["differing_keys"] == 1 and meta["missing_in_warehouse"] == 1
    assert meta["sample_keys"] == [str(key)]
    assert fixed.passed


def test_parity_ignores_soft_deleted_rows_only_when_the_source_deleted_them(world: World) -> None:
    deals = world.tables["deals"]
    key = _some_key(world, "deals")
    with world.queries() as (source, warehouse):
        warehouse(f"UPDATE SOPHIA.RAW.DEALS SET \"_meta/op\" = 'd' WHERE ID = {key}")
        try:
            failed = run_parity(deals, source, warehouse, world.config)
        finally:
            warehouse(f"UPDATE SOPHIA.RAW.DEALS SET \"_meta/op\" = 'u' WHERE ID = {key}")
    assert not failed.passed and failed.metadata["sample_keys"].value == [str(key)]


def test_uniqueness_fails_on_a_duplicated_key(world: World) -> None:
    contacts = world.tables["contacts"]
    key = _some_key(world, "contacts")
    with world.queries() as (_, warehouse):
        assert run_uniqueness(contacts, warehouse, world.config).passed
        warehouse(
            f"CREATE OR REPLACE TABLE SOPHIA.RAW.CONTACTS_KEPT AS SELECT * FROM SOPHIA.RAW.CONTACTS WHERE ID = {key}"
        )
        warehouse("INSERT INTO SOPHIA.RAW.CONTACTS SELECT * FROM SOPHIA.RAW.CONTACTS_KEPT")
        try:
            failed = run_uniqueness(contacts, warehouse, world.config)
        finally:
            warehouse(f"DELETE FROM SOPHIA.RAW.CONTACTS WHERE ID = {key}")
            warehouse("INSERT INTO SOPHIA.RAW.CONTACTS SELECT * FROM SOPHIA.RAW.CONTACTS_KEPT")
            warehouse("DROP TABLE SOPHIA.RAW.CONTACTS_KEPT")
        fixed = run_uniqueness(contacts, warehouse, world.config)
    assert not failed.passed
    assert failed.metadata["duplicated_keys"].value == 1 and failed.metadata["sample_keys"].value == [str(key)]
    assert fixed.passed


def test_foreign_keys_fail_on_an_orphan_and_name_the_constraint(world: World) -> None:
    deals = world.tables["deals"]
    key = _some_key(world, "deals")
    tables = list(world.tables.values())
    with world.source() as conn, world.queries() as (_, warehouse):
        assert run_foreign_keys(deals, tables, conn, warehouse, world.config).passed
        (company,) = warehouse(f"SELECT COMPANY_ID FROM SOPHIA.RAW.DEALS WHERE ID = {key}")[0]
        warehouse(f"UPDATE SOPHIA.RAW.DEALS SET COMPANY_ID = 999999999 WHERE ID = {key}")
        try:
            failed = run_foreign_keys(deals, tables, conn, warehouse, world.config)
        finally:
            value = "NULL" if company is None else company
            warehouse(f"UPDATE SOPHIA.RAW.DEALS SET COMPANY_ID = {value} WHERE ID = {key}")
        fixed = run_foreign_keys(deals, tables, conn, warehouse, world.config)
    assert not failed.passed
    assert "deals.company_id -> companies.id: 1 rows" in failed.metadata["summary"].value
    assert failed.metadata["sample_keys"].value == {"deals.company_id -> companies.id": [str(key)]}
    assert fixed.passed


def test_schema_drift_names_a_source_column_the_catalog_lacks(world: World) -> None:
    deals = world.tables["deals"]
    with world.source() as conn, world.queries() as (_, warehouse):
        assert run_drift(deals, world.catalog, conn, warehouse, world.config).passed
        conn.execute("ALTER TABLE deals ADD COLUMN region text")
        try:
            failed = run_drift(deals, world.catalog, conn, warehouse, world.config)
        finally:
            conn.execute("ALTER TABLE deals DROP COLUMN region")
        fixed = run_drift(deals, world.catalog, conn, warehouse, world.config)
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.WARN
    assert failed.metadata["differences"].value == ["source: column region is not in the collection schema"]
    assert fixed.passed


def test_schema_drift_names_a_warehouse_type_change(world: World) -> None:
    calls = world.tables["calls"]
    with world.queries() as (_, warehouse):
        warehouse("ALTER TABLE SOPHIA.RAW.CALLS ADD COLUMN EXTRA_NOTE VARCHAR")
        try:
            failed = run_drift(calls, world.catalog, None, warehouse, world.config)
        finally:
            warehouse("ALTER TABLE SOPHIA.RAW.CALLS DROP COLUMN EXTRA_NOTE")
    assert failed.metadata["differences"].value == ["warehouse: column EXTRA_NOTE is not in the collection schema"]


def _seed_history(instance: dg.DagsterInstance, world: World, volumes: list[int], today: datetime) -> None:
    key = world.tables["companies"].key
    for days_ago, volume in enumerate(volumes, start=1):
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name=VOLUME,
                passed=True,
                metadata={
                    "volume_day": (today - timedelta(days=days_ago)).date().isoformat(),
                    "rows_changed_24h": volume,
                },
            )
        )


def test_volume_learns_then_warns_on_a_tenfold_burst(world: World) -> None:
    companies = world.tables["companies"]
    now = datetime.now(UTC)
    with world.queries() as (_, warehouse):
        ((today,),) = warehouse(
            "SELECT COUNT(*) FROM SOPHIA.RAW.COMPANIES WHERE flow_published_at >= "
            f"CAST('{(now - timedelta(hours=24)).isoformat()}' AS TIMESTAMP_TZ)"
        )
        with dg.DagsterInstance.ephemeral() as instance:
            _seed_history(instance, world, [100] * 5, now)
            learning = run_volume(companies, warehouse, instance, world.config, now)
        with dg.DagsterInstance.ephemeral() as instance:
            _seed_history(instance, world, [today // 10 + d % 3 for d in range(14)], now)
            burst = run_volume(companies, warehouse, instance, world.config, now)
        with dg.DagsterInstance.ephemeral() as instance:
            _seed_history(instance, world, [today + d % 3 - 1 for d in range(14)], now)
            usual = run_volume(companies, warehouse, instance, world.config, now)
    assert learning.passed and learning.metadata["summary"].value.endswith("learning (5 of 14 days)")
    assert not burst.passed and burst.severity == dg.AssetCheckSeverity.WARN
    assert burst.metadata["rows_changed_24h"].value == today and burst.metadata["robust_z"].value > 3.5
    assert usual.passed and usual.metadata["baseline_days"].value == 14


def test_pipeline_health_fails_while_a_task_is_paused(world: World) -> None:
    assert task_health(world.plane, world.catalog, TASK).passed
    world.plane.pause(TASK)
    try:
        paused = task_health(world.plane, world.catalog, TASK)
    finally:
        world.plane.resume(TASK)
    assert not paused.passed
    assert paused.problems == ("the task is paused but the catalog says it runs (shards.disable is false)",)
    assert task_health(world.plane, world.catalog, TASK).passed

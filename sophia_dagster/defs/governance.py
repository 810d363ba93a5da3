"""This platform's governance: checks on the warehouse tables, the Estuary tasks and the platform itself,
the health report, the `governance_daily` job and its 06:00 UTC schedule, the alert sensors, and the
automation that keeps analytics models fresh locally. Thresholds live in `governance.yaml` beside this file.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import dagster as dg

import sophia_dagster
from sophia_dagster.config import PLATFORM_CATALOG_DIR, Settings, get_settings
from sophia_dagster.defs.resources import local_estuary
from sophia_dagster.estuary.catalog import Catalog, load_catalog
from sophia_dagster.governance.automation import govern_spec
from sophia_dagster.governance.config import GovernanceConfig, load_governance_config
from sophia_dagster.governance.platform_checks import PLATFORM_KEY, build_platform_assets
from sophia_dagster.governance.report_asset import build_report_asset
from sophia_dagster.governance.sensors import build_check_alert_sensor, build_run_failure_alert_sensor
from sophia_dagster.governance.table_checks import build_table_checks
from sophia_dagster.governance.tables import GovernedTable, governed_tables, task_asset_keys
from sophia_dagster.governance.task_checks import build_task_check
from sophia_dagster.warehouse.models import load_models

CONFIG_FILE = Path(__file__).with_name("governance.yaml")
PACKAGE = Path(sophia_dagster.__file__).parent
REPO_ROOT = PACKAGE.parent
JOB = "governance_daily"
SCHEDULE_CRON = "0 6 * * *"


@functools.cache
def platform_catalog() -> Catalog:
    """The platform catalog, read once per process (the graph and the governance wrapper both need it)."""
    return load_catalog(PLATFORM_CATALOG_DIR)


@functools.cache
def governance_config() -> GovernanceConfig:
    """The platform's governance thresholds and severities."""
    return load_governance_config(CONFIG_FILE)


def _runs_here(settings: Settings) -> Callable[[str], bool]:
    """Whether a task runs in this environment: locally, what the embedded data plane says (HubSpot needs its
    token); against Estuary, every task."""
    if settings.environment != "local":
        return lambda task: True
    runtime = local_estuary(settings)
    return lambda task: runtime.not_runnable_reason(task) is None


def _runnable(catalog: Catalog, table: GovernedTable, runs: Callable[[str], bool]) -> bool:
    """A table has data to judge when its materialization and every capture feeding it run here."""
    feeding = [n for n, c in catalog.captures.items() if any(b.target == table.collection for b in c.bindings)]
    return all(runs(n) for n in [*feeding, table.materialization])


def _webhook_url() -> str | None:
    secret = get_settings().alert_webhook_url
    return secret.get_secret_value() if secret else None


def with_governance(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with freshness policies on warehouse tables and memory assets and automation on the models."""
    config = governance_config()
    tables = {t.key for t in governed_tables(platform_catalog())}
    models = {m.key for m in load_models()}
    return defs.permissive_map_resolved_asset_specs(
        func=lambda spec: govern_spec(spec, config.freshness, tables, models), selection=None
    )


@dg.definitions
def governance() -> dg.Definitions:
    """Governance checks, report, job, schedule and sensors of this platform."""
    settings = get_settings()
    config = governance_config()
    catalog = platform_catalog()
    tables = governed_tables(catalog)
    table_checks = build_table_checks(catalog, tables, config)
    task_checks = [build_task_check(catalog, task, config) for task in catalog.tasks]
    platform_asset, platform_checks = build_platform_assets(REPO_ROOT, PACKAGE, config)
    every_check = [*table_checks, *task_checks, *platform_checks]
    runs = _runs_here(settings)
    elsewhere = {t.key for t in tables if not _runnable(catalog, t, runs)}
    here = {k for t in catalog.tasks if runs(t) for k in task_asset_keys(catalog, t)} - elsewhere
    covered = [k for c in every_check for k in c.check_keys if k.asset_key in here | {PLATFORM_KEY}]
    report = build_report_asset(covered, settings.state_dir, settings.environment, deps=[PLATFORM_KEY])
    job = dg.define_asset_job(
        JOB,
        selection=dg.AssetSelection.checks(*covered) | dg.AssetSelection.assets(PLATFORM_KEY, report.key),
        executor_def=dg.in_process_executor,
        description="Every governance check, then the health report (checks first: the report step runs last).",
    )
    ui = settings.dagster_ui_url
    local = dg.DefaultSensorStatus.RUNNING if settings.environment == "local" else dg.DefaultSensorStatus.STOPPED
    return dg.Definitions(
        assets=[platform_asset, report],
        asset_checks=every_check,
        jobs=[job],
        schedules=[
            dg.ScheduleDefinition(
                name=f"{JOB}_schedule",
                job=job,
                cron_schedule=SCHEDULE_CRON,
                execution_timezone="UTC",
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description="The daily health check at 06:00 UTC.",
            )
        ],
        sensors=[
            build_check_alert_sensor(ui, _webhook_url, config.alerts),
            build_run_failure_alert_sensor(ui, _webhook_url, config.alerts),
            dg.AutomationConditionSensorDefinition(
                "default_automation_condition_sensor",
                target=dg.AssetSelection.groups("analytics"),
                default_status=local,
                description="Keeps analytics models fresh (locally on by default; in Snowflake they are dynamic tables).",
            ),
        ],
    )

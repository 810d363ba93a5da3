"""The pipeline-health asset check of each Estuary task, reported on every asset the task produces."""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.estuary.runtime import EstuaryRuntime
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator, safe_name
from sophia_dagster.governance.config import GovernanceConfig
from sophia_dagster.governance.pipelines import TaskHealth, task_health
from sophia_dagster.governance.tables import task_asset_keys

PIPELINE_HEALTH = "pipeline_health"


def health_metadata(health: TaskHealth) -> dict[str, Any]:
    """What the check reports about a task."""
    summary = f"{health.task}: {health.status}" + (f" ({'; '.join(health.problems)})" if health.problems else "")
    return {
        "summary": summary,
        "task": health.task,
        "status": health.status,
        "message": health.message,
        "disabled_in_catalog": health.disabled_in_catalog,
        "errors_24h": health.errors,
        "failures_24h": health.failures,
        "docs_24h": health.docs,
        "last_activity": health.last_activity.isoformat() if health.last_activity else "none in the window",
        "problems": dg.MetadataValue.json(list(health.problems)),
        "next_step": "nothing to do"
        if health.passed
        else (
            f"Resume the task (sophia-flow resume {health.task}, or the estuary resource's resume) if it was "
            "paused by mistake; otherwise read the task's logs in Estuary for the error."
        ),
    }


def build_task_check(
    catalog: Catalog, task: str, config: GovernanceConfig, translator: DagsterEstuaryTranslator | None = None
) -> dg.AssetChecksDefinition:
    """Reads the task's status and stats once and reports the verdict on each of its assets.

    Args:
        catalog: the catalog (whether the task is meant to be disabled).
        task: the task's catalog name.
        config: severity and the stats window.
        translator: names the task's assets.

    Example:
        >>> build_task_check(catalog, "sophia/postgres-cdc", load_governance_config(path))
    """
    specs = [
        dg.AssetCheckSpec(PIPELINE_HEALTH, asset=key, description=f"Estuary task {task} is healthy")
        for key in task_asset_keys(catalog, task, translator)
    ]

    @dg.multi_asset_check(name=f"{safe_name(task)}_pipeline_health", specs=specs, can_subset=True)
    def _check(context: dg.AssetCheckExecutionContext, estuary: EstuaryRuntime) -> Iterator[dg.AssetCheckResult]:
        health = task_health(estuary, catalog, task, config.pipeline_health.stats_hours)
        for key in context.selected_asset_check_keys:
            yield dg.AssetCheckResult(
                asset_key=key.asset_key,
                check_name=PIPELINE_HEALTH,
                passed=health.passed,
                severity=config.pipeline_health.dagster_severity,
                description=health_metadata(health)["summary"],
                metadata=health_metadata(health),
            )

    return _check

"""An asset check per Estuary task: is the task healthy according to Estuary (ok or deliberately disabled)?"""

from collections.abc import Iterator

import dagster as dg

from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.estuary.runtime import RESOURCE_KEY, EstuaryRuntime
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator, safe_name

CHECK_NAME = "estuary_task_healthy"


def task_check_keys(catalog: Catalog, task: str, translator: DagsterEstuaryTranslator) -> list[dg.AssetCheckKey]:
    """The check keys of one task (one per asset the task produces)."""
    return [dg.AssetCheckKey(spec.key, CHECK_NAME) for spec in translator.get_task_specs(catalog, task)]


def build_task_check(
    catalog: Catalog, task: str, translator: DagsterEstuaryTranslator, resource_key: str = RESOURCE_KEY
) -> dg.AssetChecksDefinition:
    """Reads the task's status once and reports it on every asset of the task."""
    check_specs = [
        dg.AssetCheckSpec(CHECK_NAME, asset=key.asset_key, description=f"Estuary reports {task} as ok")
        for key in task_check_keys(catalog, task, translator)
    ]

    @dg.multi_asset_check(
        name=f"estuary_{safe_name(task)}_healthy",
        specs=check_specs,
        required_resource_keys={resource_key},
        can_subset=True,
    )
    def _check(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        runtime: EstuaryRuntime = getattr(context.resources, resource_key)
        (status,) = runtime.status([task])
        severity = dg.AssetCheckSeverity.WARN if status.status == "warning" else dg.AssetCheckSeverity.ERROR
        for check_key in context.selected_asset_check_keys:
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=CHECK_NAME,
                passed=status.healthy,
                severity=severity,
                metadata={
                    "estuary/status": status.status,
                    "estuary/message": status.message,
                    "estuary/last_pub_id": status.last_pub_id or "",
                },
            )

    return _check


def build_estuary_checks(
    catalog: Catalog, translator: DagsterEstuaryTranslator | None = None, resource_key: str = RESOURCE_KEY
) -> list[dg.AssetChecksDefinition]:
    """One health check definition per task of the catalog."""
    translator = translator or DagsterEstuaryTranslator()
    return [build_task_check(catalog, task, translator, resource_key) for task in catalog.tasks]

"""An asset check per Estuary task: is the task healthy according to Estuary (ok or deliberately disabled)?"""

from collections.abc import Iterator

import dagster as dg

from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.estuary.metadata import EstuaryMetadataSet
from sophia_dagster.estuary.runtime import RESOURCE_KEY, EstuaryRuntime
from sophia_dagster.estuary.specs import EstuarySpecs
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator

CHECK_NAME = "estuary_task_healthy"


def build_task_checks(
    specs: EstuarySpecs, task: str, resource_key: str = RESOURCE_KEY
) -> list[dg.AssetChecksDefinition]:
    """The task's health checks, one definition per op of the task (see :meth:`EstuarySpecs.task_ops`), so the
    checks of assets that did materialize run even when another op of the task was skipped."""
    return [
        _task_check(specs.catalog, task, f"{op_name}_healthy", [b.spec.key for b in bound], resource_key)
        for op_name, bound in specs.task_ops(task).items()
    ]


def _task_check(
    catalog: Catalog, task: str, name: str, keys: list[dg.AssetKey], resource_key: str
) -> dg.AssetChecksDefinition:
    """Reads the task's status once and reports it on each of ``keys``."""
    check_specs = [
        dg.AssetCheckSpec(CHECK_NAME, asset=key, description=f"Estuary reports {task} as ok") for key in keys
    ]

    @dg.multi_asset_check(
        name=name,
        specs=check_specs,
        required_resource_keys={resource_key},
        can_subset=True,
    )
    def _check(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        runtime: EstuaryRuntime = getattr(context.resources, resource_key)
        runtime.use_catalog(catalog)
        (status,) = runtime.status([task])
        severity = dg.AssetCheckSeverity.WARN if status.status == "warning" else dg.AssetCheckSeverity.ERROR
        for check_key in context.selected_asset_check_keys:
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=CHECK_NAME,
                passed=status.healthy,
                severity=severity,
                metadata={
                    **EstuaryMetadataSet(
                        status=status.status, message=status.message, last_pub_id=status.last_pub_id or ""
                    )
                },
            )

    return _check


def checks_from_specs(specs: EstuarySpecs, resource_key: str = RESOURCE_KEY) -> list[dg.AssetChecksDefinition]:
    """The health check definitions of every task of ``specs``."""
    return [check for task in specs.tasks for check in build_task_checks(specs, task, resource_key)]


def build_estuary_checks(
    *,
    catalog: Catalog,
    translator: DagsterEstuaryTranslator | None = None,
    resource_key: str = RESOURCE_KEY,
    op_per_capture: bool = False,
) -> list[dg.AssetChecksDefinition]:
    """A health check per task of an Estuary catalog, on every asset the task produces.

    Args:
        catalog: the loaded catalog (the same one given to :func:`build_estuary_assets`).
        translator: the translator the assets were built with (the checks sit on its asset keys).
        resource_key: the key the :class:`EstuaryRuntime` resource is bound under.
        op_per_capture: as given to :func:`build_estuary_assets`: one check definition per op of a task.

    Returns:
        One multi-asset check per task (per op of a task with ``op_per_capture``); it fails when Estuary
        reports the task ``warning`` or ``error``.

    Example:
        ``dg.Definitions(asset_checks=build_estuary_checks(catalog=load_catalog("flows/")), ...)``
    """
    return checks_from_specs(EstuarySpecs.build(catalog, translator, op_per_capture=op_per_capture), resource_key)

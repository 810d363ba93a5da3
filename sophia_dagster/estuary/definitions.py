"""All of an Estuary catalog's Dagster objects at once: assets, health checks and the activity sensor."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from sophia_dagster.estuary.assets import assets_from_specs
from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.estuary.checks import checks_from_specs
from sophia_dagster.estuary.runtime import RESOURCE_KEY, EstuaryRuntime
from sophia_dagster.estuary.sensors import sensor_from_specs
from sophia_dagster.estuary.specs import EstuarySpecs, Translation
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator


def build_estuary_definitions(
    *,
    catalog: Catalog,
    translator: DagsterEstuaryTranslator | None = None,
    tasks: Sequence[str] | None = None,
    translation: Translation | None = None,
    health_checks: bool = True,
    activity_sensor: bool = True,
    sensor_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    resource_key: str = RESOURCE_KEY,
    runtime: EstuaryRuntime | None = None,
    op_per_capture: bool = False,
) -> dg.Definitions:
    """Assets, checks and sensor of a catalog's tasks, from specs translated once.

    Args:
        catalog: the loaded catalog; the runtime publishes and runs this same catalog.
        translator: turns bindings into AssetSpecs (:class:`DagsterEstuaryTranslator` by default).
        tasks: the tasks to include (every capture and materialization when None).
        translation: a last word on each spec (key, group, owners, kinds, tags), given the binding it describes.
        health_checks: whether each task gets its ``estuary_task_healthy`` checks.
        activity_sensor: whether to include the activity sensor (it targets the health checks, so needs them).
        sensor_status: whether the sensor runs as soon as the code location loads.
        resource_key: the key the :class:`EstuaryRuntime` is bound under.
        runtime: a runtime to bind under ``resource_key``; leave None when the code location binds one.
        op_per_capture: one op per feeding capture of a materialization, for a runtime that runs captures
            in-process (see :meth:`EstuarySpecs.task_ops`); keep it off against Estuary.

    Example:
        ``build_estuary_definitions(catalog=load_catalog("flows/"), runtime=EstuaryWorkspace(api_token=...))``
    """
    if activity_sensor and not health_checks:
        raise ValueError("the activity sensor runs the health checks of unhealthy tasks: enable health_checks too")
    specs = EstuarySpecs.build(catalog, translator, tasks=tasks, translation=translation, op_per_capture=op_per_capture)
    checks = checks_from_specs(specs, resource_key) if health_checks else []
    sensors = (
        [sensor_from_specs(specs, resource_key=resource_key, default_status=sensor_status)] if activity_sensor else []
    )
    return dg.Definitions(
        assets=assets_from_specs(specs, resource_key),
        asset_checks=checks,
        sensors=sensors,
        resources={resource_key: runtime} if runtime is not None else {},
    )

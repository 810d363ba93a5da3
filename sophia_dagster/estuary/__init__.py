"""Estuary Flow for Dagster: the catalog as code, a control-plane resource, assets, checks and a sensor.

Typical use::

    catalog = load_catalog("flows/")
    defs = dg.Definitions(
        assets=build_estuary_assets(catalog),
        asset_checks=build_estuary_checks(catalog),
        sensors=[build_estuary_sensor(catalog)],
        resources={"estuary": EstuaryWorkspace(api_token=dg.EnvVar("ESTUARY_API_TOKEN"), catalog_path="flows/")},
    )
"""

from sophia_dagster.estuary.assets import build_estuary_assets
from sophia_dagster.estuary.catalog import Catalog, load_catalog
from sophia_dagster.estuary.checks import build_estuary_checks
from sophia_dagster.estuary.errors import (
    CatalogError,
    ConcurrentChangeError,
    EstuaryAPIError,
    EstuaryError,
    PublicationFailedError,
    TaskNotReadyError,
)
from sophia_dagster.estuary.models import PublishResult, TaskStats, TaskStatus
from sophia_dagster.estuary.runtime import EstuaryRuntime
from sophia_dagster.estuary.sensors import build_estuary_sensor
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator, EstuaryBinding
from sophia_dagster.estuary.workspace import EstuaryWorkspace

__all__ = [
    "Catalog",
    "CatalogError",
    "ConcurrentChangeError",
    "DagsterEstuaryTranslator",
    "EstuaryAPIError",
    "EstuaryBinding",
    "EstuaryError",
    "EstuaryRuntime",
    "EstuaryWorkspace",
    "PublicationFailedError",
    "PublishResult",
    "TaskNotReadyError",
    "TaskStats",
    "TaskStatus",
    "build_estuary_assets",
    "build_estuary_checks",
    "build_estuary_sensor",
    "load_catalog",
]

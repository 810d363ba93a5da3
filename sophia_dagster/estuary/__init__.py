"""Estuary Flow for Dagster: the catalog as code, a control-plane resource, assets, checks and a sensor.

From a ``defs.yaml`` (``dg scaffold defs sophia_dagster.estuary.EstuaryCatalogComponent estuary``)::

    type: sophia_dagster.estuary.EstuaryCatalogComponent
    attributes:
      catalog_paths: [flows]
      workspace: {api_token_env: ESTUARY_API_TOKEN}

or in Python::

    defs = build_estuary_definitions(
        catalog=load_catalog("flows/"),
        runtime=EstuaryWorkspace(api_token=dg.EnvVar("ESTUARY_API_TOKEN")),
    )

Customise keys, groups and owners with a :class:`DagsterEstuaryTranslator` subclass (it receives an
:class:`EstuaryBinding`) or the component's ``translation``. Runtimes implement :class:`EstuaryRuntime`;
every error is an :class:`EstuaryError`.
"""

from sophia_dagster.estuary.assets import build_estuary_assets
from sophia_dagster.estuary.catalog import Catalog, load_catalog
from sophia_dagster.estuary.checks import build_estuary_checks
from sophia_dagster.estuary.component import EstuaryCatalogComponent, TaskSelector
from sophia_dagster.estuary.definitions import build_estuary_definitions
from sophia_dagster.estuary.errors import (
    CatalogError,
    ConcurrentChangeError,
    EstuaryAPIError,
    EstuaryError,
    PublicationFailedError,
    TaskNotReadyError,
)
from sophia_dagster.estuary.metadata import EstuaryMetadataSet
from sophia_dagster.estuary.models import PublishResult, TaskStats, TaskStatus
from sophia_dagster.estuary.runtime import EstuaryRuntime
from sophia_dagster.estuary.sensors import build_estuary_sensor
from sophia_dagster.estuary.specs import EstuarySpecs
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator, EstuaryBinding
from sophia_dagster.estuary.workspace import EstuaryWorkspace

__all__ = [
    "Catalog",
    "CatalogError",
    "ConcurrentChangeError",
    "DagsterEstuaryTranslator",
    "EstuaryAPIError",
    "EstuaryBinding",
    "EstuaryCatalogComponent",
    "EstuaryError",
    "EstuaryMetadataSet",
    "EstuaryRuntime",
    "EstuarySpecs",
    "EstuaryWorkspace",
    "PublicationFailedError",
    "PublishResult",
    "TaskNotReadyError",
    "TaskSelector",
    "TaskStats",
    "TaskStatus",
    "build_estuary_assets",
    "build_estuary_checks",
    "build_estuary_definitions",
    "build_estuary_sensor",
    "load_catalog",
]

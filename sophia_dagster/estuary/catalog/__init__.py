"""Estuary Flow catalog as code: models of ``flow.yaml``, a loader, cross-checks and ``${ENV}`` placeholders.

Secrets are written as ``${ENV_VAR}`` placeholders; they stay unresolved in the loaded catalog and are only
substituted by :func:`resolve_placeholders` at publish time.
"""

from sophia_dagster.estuary.catalog.crosschecks import check_references
from sophia_dagster.estuary.catalog.loader import load_catalog, parse_catalog_text
from sophia_dagster.estuary.catalog.models import (
    SECTIONS,
    Capture,
    CaptureBinding,
    Catalog,
    CatalogFile,
    Collection,
    Connector,
    Endpoint,
    Materialization,
    MaterializationBinding,
    Shards,
    SourceRef,
    SpecType,
    Task,
)
from sophia_dagster.estuary.catalog.placeholders import iter_placeholders, resolve_placeholders
from sophia_dagster.estuary.errors import CatalogError, CatalogIssue, format_path

__all__ = [
    "SECTIONS",
    "Capture",
    "CaptureBinding",
    "Catalog",
    "CatalogError",
    "CatalogFile",
    "CatalogIssue",
    "Collection",
    "Connector",
    "Endpoint",
    "Materialization",
    "MaterializationBinding",
    "Shards",
    "SourceRef",
    "SpecType",
    "Task",
    "check_references",
    "format_path",
    "iter_placeholders",
    "load_catalog",
    "parse_catalog_text",
    "resolve_placeholders",
]

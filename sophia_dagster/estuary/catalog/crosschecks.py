"""Cross-spec checks of a loaded catalog: bindings name declared collections, keys are schema properties."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sophia_dagster.estuary.catalog.models import Catalog
from sophia_dagster.estuary.errors import CatalogIssue


def check_references(catalog: Catalog) -> list[CatalogIssue]:
    """Cross-spec checks: bindings name declared collections, each collection has one capture, keys are in schemas."""
    return [*_capture_issues(catalog), *_materialization_issues(catalog), *_key_issues(catalog)]


def _capture_issues(catalog: Catalog) -> Iterator[CatalogIssue]:
    writers: dict[str, str] = {}
    for name, capture in catalog.captures.items():
        for index, binding in enumerate(capture.bindings):
            where = (catalog.files[name], f"captures.{name}.bindings[{index}].target")
            if binding.target not in catalog.collections:
                yield CatalogIssue(*where, f"collection {binding.target!r} is not declared")
            elif binding.target in writers:
                yield CatalogIssue(
                    *where, f"collection {binding.target!r} is already bound by {writers[binding.target]}"
                )
            writers.setdefault(binding.target, f"capture {name}")


def _materialization_issues(catalog: Catalog) -> Iterator[CatalogIssue]:
    for name, materialization in catalog.materializations.items():
        resources: list[dict[str, Any]] = []
        for index, binding in enumerate(materialization.bindings):
            where = f"materializations.{name}.bindings[{index}]"
            if binding.source_name not in catalog.collections:
                yield CatalogIssue(
                    catalog.files[name], f"{where}.source", f"reads missing collection {binding.source_name!r}"
                )
            if binding.resource in resources:
                yield CatalogIssue(
                    catalog.files[name], f"{where}.resource", "another binding already writes this resource"
                )
            resources.append(binding.resource)


def _key_issues(catalog: Catalog) -> Iterator[CatalogIssue]:
    for name, collection in catalog.collections.items():
        properties = collection.document_schema.get("properties")
        for index, pointer in enumerate(collection.key):
            if isinstance(properties, dict) and pointer.split("/")[1] not in properties:
                yield CatalogIssue(
                    catalog.files[name], f"collections.{name}.key[{index}]", f"{pointer!r} is not a schema property"
                )

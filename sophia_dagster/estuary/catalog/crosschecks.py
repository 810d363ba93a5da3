"""Cross-spec checks of a loaded catalog: one capture per collection, one binding per resource, keys in schemas.

A binding may name a collection that is not in the catalog: it must then be live in Estuary, which is
checked when publishing (see :meth:`~sophia_dagster.estuary.catalog.models.Catalog.external_collections`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sophia_dagster.estuary.catalog.models import Catalog, valid_name
from sophia_dagster.estuary.catalog.schemas import unescape
from sophia_dagster.estuary.errors import CatalogIssue


def check_references(catalog: Catalog) -> list[CatalogIssue]:
    """Cross-spec checks: each collection has one writer, each resource one binding, keys are in schemas."""
    return [*_name_issues(catalog), *_capture_issues(catalog), *_materialization_issues(catalog), *_key_issues(catalog)]


def _name_issues(catalog: Catalog) -> Iterator[CatalogIssue]:
    for task in catalog.tasks:
        for collection, path in catalog.bindings_of(task):
            if not valid_name(collection):
                yield CatalogIssue(
                    catalog.files[task], path, f"invalid collection name {collection!r}: expected 'prefix/name'"
                )


def _capture_issues(catalog: Catalog) -> Iterator[CatalogIssue]:
    writers = {name: f"derivation {name}" for name in catalog.derivations}
    for name, capture in catalog.captures.items():
        for index, binding in enumerate(capture.bindings):
            where = (catalog.files[name], f"captures.{name}.bindings[{index}].target")
            if binding.target in writers:
                yield CatalogIssue(
                    *where, f"collection {binding.target!r} is already written by {writers[binding.target]}"
                )
            writers.setdefault(binding.target, f"capture {name}")


def _materialization_issues(catalog: Catalog) -> Iterator[CatalogIssue]:
    for name, materialization in catalog.materializations.items():
        resources: list[dict[str, Any]] = []
        for index, binding in enumerate(materialization.bindings):
            if binding.resource in resources:
                where = f"materializations.{name}.bindings[{index}].resource"
                yield CatalogIssue(catalog.files[name], where, "another binding already writes this resource")
            resources.append(binding.resource)


def _key_issues(catalog: Catalog) -> Iterator[CatalogIssue]:
    for name, collection in catalog.collections.items():
        properties = catalog.schema_properties(name)
        for index, pointer in enumerate(collection.key):
            if properties is not None and unescape(pointer.split("/")[1]) not in properties:
                yield CatalogIssue(
                    catalog.files[name], f"collections.{name}.key[{index}]", f"{pointer!r} is not a schema property"
                )

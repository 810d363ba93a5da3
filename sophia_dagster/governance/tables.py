"""Which warehouse tables governance judges, read from the Estuary catalog: the table, its key, the
collection it materializes and, for CDC tables, the source table it mirrors."""

from __future__ import annotations

import re
from dataclasses import dataclass

import dagster as dg

from sophia_dagster.estuary.catalog import Capture, Catalog
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator, task_bindings

META_OP = "_meta/op"
"""The column holding a materialized document's operation; soft-deleted rows have 'd'."""
POSTGRES_CONNECTOR = "source-postgres"
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote(name: str) -> str:
    """A SQL identifier: plain names stay unquoted (case-insensitive), others are double-quoted."""
    return name if _PLAIN.match(name) else '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class SourceTable:
    """A PostgreSQL table a CDC capture reads."""

    namespace: str
    name: str

    @property
    def sql(self) -> str:
        """The quoted, schema-qualified name."""
        return f'"{self.namespace}"."{self.name}"'


@dataclass(frozen=True)
class GovernedTable:
    """One warehouse table written by a materialization binding."""

    key: dg.AssetKey
    materialization: str
    collection: str
    database: str
    schema: str
    table: str
    key_fields: tuple[str, ...]
    delta: bool
    hard_delete: bool
    source: SourceTable | None
    properties: tuple[str, ...]

    @property
    def sql(self) -> str:
        """The fully qualified warehouse name."""
        return ".".join(quote(part) for part in (self.database, self.schema, self.table))

    def live(self, alias: str = "") -> str:
        """A WHERE condition keeping live rows (soft-deleted rows stay unless hardDelete)."""
        if self.hard_delete or self.delta:
            return "TRUE"
        return f"COALESCE({alias + '.' if alias else ''}\"{META_OP}\", 'c') <> 'd'"

    @property
    def name(self) -> str:
        """The key as users read it."""
        return self.key.to_user_string()


def _sources(catalog: Catalog) -> dict[str, SourceTable]:
    """The PostgreSQL table behind each collection written by a source-postgres capture."""
    found = {}
    for capture in catalog.captures.values():
        if capture.endpoint.connector.name != POSTGRES_CONNECTOR:
            continue
        for binding in capture.bindings:
            resource = binding.resource
            found[binding.target] = SourceTable(str(resource.get("namespace", "public")), str(resource["stream"]))
    return found


def governed_tables(catalog: Catalog, translator: DagsterEstuaryTranslator | None = None) -> list[GovernedTable]:
    """Every enabled warehouse binding of the catalog's materializations, in catalog order.

    Args:
        catalog: the loaded Estuary catalog.
        translator: names the assets (the same translator the Estuary assets were built with).

    Example:
        >>> [t.name for t in governed_tables(load_catalog(PLATFORM_CATALOG_DIR))][:1]
        ['snowflake/sophia/raw/companies']
    """
    translator = translator or DagsterEstuaryTranslator()
    sources = _sources(catalog)
    tables = []
    for name, model in catalog.materializations.items():
        config = model.endpoint.connector.config
        for binding, spec in zip(task_bindings(catalog, name), model.bindings, strict=True):
            if spec.disable:
                continue
            collection = catalog.collections[binding.collection]
            properties = tuple(p for p in (collection.document_schema.get("properties") or {}) if p != "_meta")
            tables.append(
                GovernedTable(
                    key=translator.get_destination_asset_key(binding),
                    materialization=name,
                    collection=binding.collection,
                    database=str(config.get("database", "")),
                    schema=str(binding.resource.get("schema") or config.get("schema", "")),
                    table=str(binding.resource["table"]),
                    key_fields=tuple(pointer.strip("/") for pointer in collection.key),
                    delta=bool(binding.resource.get("delta_updates")),
                    hard_delete=bool(config.get("hardDelete")),
                    source=sources.get(binding.collection),
                    properties=properties,
                )
            )
    return tables


def task_asset_keys(
    catalog: Catalog, task: str, translator: DagsterEstuaryTranslator | None = None
) -> list[dg.AssetKey]:
    """The assets a task produces: its collections (capture) or its tables (materialization)."""
    translator = translator or DagsterEstuaryTranslator()
    model = catalog.tasks[task]
    if isinstance(model, Capture):
        return [translator.get_collection_asset_key(c) for c in catalog.collections_of(task)]
    return [translator.get_destination_asset_key(b) for b in task_bindings(catalog, task)]

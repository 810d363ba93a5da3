"""Catalog -> Dagster AssetSpecs: source tables -> Estuary collections -> destination tables.

Subclass :class:`DagsterEstuaryTranslator` and override one ``get_*_asset_key`` method to change the keys
of one kind of asset; the specs (kinds, groups, owners, descriptions, column schemas, metadata, lineage)
follow automatically.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import dagster as dg

from sophia_dagster.estuary.catalog import Capture, Catalog, Collection, Connector, Materialization

KIND_BY_CONNECTOR = {"postgres": "postgres", "hubspot": "hubspot", "snowflake": "snowflake"}
JSON_FORMATS = {"date-time": "timestamp", "date": "date", "uuid": "uuid", "number": "numeric", "integer": "bigint"}
MATERIALIZED_EXTRA_COLUMNS = (
    dg.TableColumn("_meta/op", "string", description="change operation: c, u or d"),
    dg.TableColumn("flow_published_at", "timestamp", description="when Estuary published the document"),
    dg.TableColumn("flow_document", "json", description="the whole document"),
)


class EstuaryBinding(NamedTuple):
    """Everything the translator knows about one binding of one task."""

    catalog: Catalog
    task: str
    index: int
    connector: Connector
    resource: dict[str, Any]
    collection: str

    @property
    def collection_spec(self) -> Collection:
        """The collection the binding writes or reads."""
        return self.catalog.collections[self.collection]


def task_bindings(catalog: Catalog, task: str) -> list[EstuaryBinding]:
    """The enabled-or-not bindings of a task, in catalog order."""
    model: Capture | Materialization = catalog.tasks[task]
    connector = model.endpoint.connector
    return [
        EstuaryBinding(catalog, task, index, connector, binding.resource, collection)
        for index, (binding, collection) in enumerate(zip(model.bindings, catalog.collections_of(task), strict=True))
    ]


def safe_name(name: str) -> str:
    """A Dagster-safe identifier (``acme/postgres-cdc`` -> ``acme_postgres_cdc``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def connector_system(connector: Connector) -> str:
    """The external system a connector talks to (``source-hubspot-native`` -> ``hubspot``)."""
    words = connector.name.split("-")[1:] or [connector.name]
    return words[0]


def column_type(schema: dict[str, Any]) -> tuple[str, bool]:
    """A column type name and nullability from a JSON schema property."""
    types = schema.get("type")
    names = [types] if isinstance(types, str) else list(types or [])
    nullable = "null" in names or not names
    concrete = [t for t in names if t != "null"]
    if not concrete:
        return "json", True
    return JSON_FORMATS.get(schema.get("format", ""), concrete[0]), nullable


def collection_columns(collection: Collection) -> list[dg.TableColumn]:
    """One column per top-level schema property (except ``_meta``), keys marked unique and not null."""
    schema = collection.document_schema
    required = set(schema.get("required") or [])
    keys = {pointer.split("/")[1] for pointer in collection.key}
    columns = []
    for name, prop in (schema.get("properties") or {}).items():
        if name == "_meta" or not isinstance(prop, dict):
            continue
        kind, nullable = column_type(prop)
        constraints = dg.TableColumnConstraints(nullable=nullable and name not in required, unique=name in keys)
        columns.append(dg.TableColumn(name, kind, description=prop.get("description"), constraints=constraints))
    return columns


class DagsterEstuaryTranslator:
    """Turns catalog bindings into AssetSpecs; override a ``get_*_asset_key`` method to rename one kind."""

    def __init__(self, owners: Sequence[str] = ()) -> None:
        self.owners = list(owners)

    def get_source_asset_key(self, binding: EstuaryBinding) -> dg.AssetKey:
        """The external table/object a capture binding reads: ``postgres/public/deals``, ``hubspot/contacts``."""
        resource = binding.resource
        path = [resource[k] for k in ("namespace", "stream", "name", "table") if isinstance(resource.get(k), str)]
        return dg.AssetKey([connector_system(binding.connector), *path])

    def get_collection_asset_key(self, collection: str) -> dg.AssetKey:
        """An Estuary collection: ``estuary/<catalog name split on />``."""
        return dg.AssetKey(["estuary", *collection.split("/")])

    def get_destination_asset_key(self, binding: EstuaryBinding) -> dg.AssetKey:
        """The table a materialization binding writes: ``snowflake/<db>/<schema>/<table>`` in lower case."""
        config, resource = binding.connector.config, binding.resource
        table = str(resource.get("table") or resource.get("index") or binding.collection.rsplit("/", 1)[-1])
        path = [str(p) for p in (config.get("database"), resource.get("schema") or config.get("schema")) if p]
        return dg.AssetKey([connector_system(binding.connector), *(p.lower() for p in [*path, table])])

    def get_group_name(self, task: str) -> str:
        """One group per task."""
        return safe_name(task)

    def _metadata(self, binding: EstuaryBinding) -> dict[str, Any]:
        return {
            "estuary/task": binding.task,
            "estuary/collection": binding.collection,
            "estuary/connector_image": binding.connector.image,
            "estuary/binding_resource": dg.MetadataValue.json(binding.resource),
        }

    def get_source_spec(self, binding: EstuaryBinding) -> dg.AssetSpec:
        """An external AssetSpec for what a capture binding reads."""
        system = connector_system(binding.connector)
        resource = json.dumps(binding.resource, sort_keys=True)
        return dg.AssetSpec(
            key=self.get_source_asset_key(binding),
            description=f"{system} {resource}, captured by Estuary task {binding.task}.",
            group_name=self.get_group_name(binding.task),
            kinds={KIND_BY_CONNECTOR.get(system, system)},
            owners=self.owners,
            metadata={"estuary/binding_resource": dg.MetadataValue.json(binding.resource)},
        )

    def get_collection_spec(self, binding: EstuaryBinding) -> dg.AssetSpec:
        """The collection a capture binding writes, depending on the source table."""
        system = connector_system(binding.connector)
        schema_doc = binding.collection_spec.document_schema.get("description")
        return dg.AssetSpec(
            key=self.get_collection_asset_key(binding.collection),
            deps=[self.get_source_asset_key(binding)],
            description=schema_doc or f"Estuary collection {binding.collection}, captured by {binding.task}.",
            group_name=self.get_group_name(binding.task),
            kinds={"estuary", KIND_BY_CONNECTOR.get(system, system)},
            owners=self.owners,
            metadata={
                **self._metadata(binding),
                "estuary/key": dg.MetadataValue.json(binding.collection_spec.key),
                "dagster/column_schema": dg.TableSchema(columns=collection_columns(binding.collection_spec)),
            },
        )

    def get_destination_spec(self, binding: EstuaryBinding) -> dg.AssetSpec:
        """The table a materialization binding writes, depending on its collection."""
        system = connector_system(binding.connector)
        key = self.get_destination_asset_key(binding)
        columns = [*collection_columns(binding.collection_spec), *MATERIALIZED_EXTRA_COLUMNS]
        return dg.AssetSpec(
            key=key,
            deps=[self.get_collection_asset_key(binding.collection)],
            description=f"{system} table written by Estuary task {binding.task} from collection {binding.collection}.",
            group_name=self.get_group_name(binding.task),
            kinds={"estuary", KIND_BY_CONNECTOR.get(system, system)},
            owners=self.owners,
            metadata={
                **self._metadata(binding),
                "dagster/table_name": ".".join(key.path[1:]),
                "dagster/column_schema": dg.TableSchema(columns=columns),
            },
        )

    def get_task_specs(self, catalog: Catalog, task: str) -> list[dg.AssetSpec]:
        """The specs a task's multi-asset produces: collections for a capture, tables for a materialization."""
        make = self.get_collection_spec if task in catalog.captures else self.get_destination_spec
        return [make(binding) for binding in task_bindings(catalog, task)]

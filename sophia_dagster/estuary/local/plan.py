"""Which parts of a Flow catalog the embedded data plane can run, and how: catalog -> a pipeline plan.

A plan is one ``source-postgres`` capture plus the ``materialize-snowflake`` bindings that read its
collections (HubSpot captures have theirs in :mod:`.hubspot_pipeline`). Other connectors are reported as not
runnable here, with why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from sophia_dagster.estuary.catalog import Capture, Catalog, Materialization
from sophia_dagster.estuary.local.capture import SourceTable
from sophia_dagster.estuary.local.materialize import Column, TableBinding
from sophia_dagster.estuary.local.values import (
    ARRAY_ELEMENTS,
    BOOL_OID,
    DATE_OID,
    FLOAT_OIDS,
    INT_OIDS,
    JSON_OIDS,
    NUMERIC_OID,
    TIMESTAMP_OID,
    TIMESTAMPTZ_OID,
)

POSTGRES_CONNECTORS = {"source-postgres"}
HUBSPOT_CONNECTORS = {"source-hubspot-native"}
SNOWFLAKE_CONNECTORS = {"materialize-snowflake"}


class NotRunnableHere(RuntimeError):
    """A catalog task the embedded data plane cannot run (the message says why)."""


@dataclass(frozen=True)
class Plan:
    """A capture and the materialization bindings fed by it."""

    capture: str
    materialization: str | None
    publication: str
    slot: str
    tables: tuple[SourceTable, ...]
    bindings: tuple[TableBinding, ...]
    sources: dict[int, str]
    hard_delete: bool
    database: str
    schema: str

    @property
    def tasks(self) -> tuple[str, ...]:
        return (self.capture,) if self.materialization is None else (self.capture, self.materialization)


def warehouse_type(type_oid: int, modifier: int, element_oid: int) -> str:
    """The warehouse column type that holds a PostgreSQL column's documents without loss."""
    if type_oid in INT_OIDS:
        return "NUMBER(38,0)"
    if type_oid in FLOAT_OIDS:
        return "FLOAT"
    if type_oid == NUMERIC_OID:
        if modifier < 4:
            return "VARCHAR"
        precision, scale = ((modifier - 4) >> 16) & 0xFFFF, (modifier - 4) & 0xFFFF
        return f"NUMBER({precision},{scale})" if precision <= 38 else "VARCHAR"
    if type_oid == BOOL_OID:
        return "BOOLEAN"
    if type_oid == DATE_OID:
        return "DATE"
    if type_oid in (TIMESTAMP_OID, TIMESTAMPTZ_OID):
        return "TIMESTAMP_TZ"
    if type_oid in JSON_OIDS or type_oid in ARRAY_ELEMENTS or element_oid:
        return "VARIANT"
    return "VARCHAR"


def schema_type(prop: Any) -> str:
    """The warehouse type of a JSON-schema property the source table does not have."""
    if not isinstance(prop, dict):
        return "VARIANT"
    types = prop.get("type")
    types = {t for t in ([types] if isinstance(types, str) else types or []) if t != "null"}
    if types == {"integer"}:
        return "NUMBER(38,0)"
    if types <= {"number", "integer"} and types:
        return "FLOAT"
    if types == {"boolean"}:
        return "BOOLEAN"
    if types == {"string"}:
        return {"date-time": "TIMESTAMP_TZ", "date": "DATE"}.get(prop.get("format"), "VARCHAR")
    return "VARIANT"


def source_columns(conn: psycopg.Connection, table: SourceTable) -> list[tuple[str, str]]:
    """``(column, warehouse type)`` of the source table's published columns, in table order."""
    rows = conn.execute(
        "SELECT a.attname, a.atttypid::int, a.atttypmod, t.typelem::int FROM pg_attribute a"
        " JOIN pg_type t ON t.oid = a.atttypid JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''"
        " ORDER BY a.attnum",
        (table.namespace, table.name),
    ).fetchall()
    return [(name, warehouse_type(oid, modifier, elem)) for name, oid, modifier, elem in rows]


def binding_columns(conn: psycopg.Connection, table: SourceTable, properties: dict[str, Any]) -> tuple[Column, ...]:
    """The source's columns, then the collection schema's other top-level properties."""
    columns = [Column(name, kind) for name, kind in source_columns(conn, table)]
    known = {c.name for c in columns}
    columns += [Column(name, schema_type(prop)) for name, prop in properties.items() if name not in known | {"_meta"}]
    return tuple(columns)


def key_fields(catalog: Catalog, collection: str) -> tuple[str, ...]:
    """The top-level fields of a collection's key (nested keys cannot run locally)."""
    fields = []
    for pointer in catalog.collections[collection].key:
        parts = pointer.strip("/").split("/")
        if len(parts) != 1:
            raise NotRunnableHere(f"collection {collection}: nested key {pointer!r} is not supported locally")
        fields.append(parts[0])
    return tuple(fields)


def runnable_reason(catalog: Catalog, task: str) -> str | None:
    """Why ``task`` cannot run in the embedded data plane, or None when it can."""
    model = catalog.tasks[task]
    connector = model.endpoint.connector.name
    if isinstance(model, Capture) and connector not in POSTGRES_CONNECTORS | HUBSPOT_CONNECTORS:
        return (
            f"capture {task} uses {model.endpoint.connector.image}; the embedded data plane runs source-postgres "
            "and source-hubspot-native captures only. Run it in dev/prod against Estuary."
        )
    if isinstance(model, Materialization) and connector not in SNOWFLAKE_CONNECTORS:
        return f"materialization {task} uses {model.endpoint.connector.image}; only materialize-snowflake runs locally"
    return None


def captures_of(catalog: Catalog, task: str) -> list[str]:
    """The runnable captures feeding ``task`` (itself when it is a capture), in catalog order."""
    if task in catalog.captures:
        return [task]
    sources = {b.source_name for b in catalog.materializations[task].bindings}
    return [
        name
        for name, capture in catalog.captures.items()
        if any(b.target in sources for b in capture.bindings) and runnable_reason(catalog, name) is None
    ]


def materialization_of(catalog: Catalog, collections: set[str]) -> tuple[str | None, Materialization | None]:
    """The one runnable materialization reading any of ``collections`` (None when there is none)."""
    names = [
        name
        for name, m in catalog.materializations.items()
        if runnable_reason(catalog, name) is None and any(b.source_name in collections for b in m.bindings)
    ]
    if len(names) > 1:
        raise NotRunnableHere(f"{len(names)} materializations read the same captured collections; one runs locally")
    return (names[0], catalog.materializations[names[0]]) if names else (None, None)


def build_plan(catalog: Catalog, capture_name: str, conn: psycopg.Connection) -> Plan:
    """The plan that runs PostgreSQL capture ``capture_name`` and the warehouse bindings reading its collections."""
    capture = catalog.captures[capture_name]
    if capture.endpoint.connector.name not in POSTGRES_CONNECTORS:
        raise NotRunnableHere(f"capture {capture_name} is not a source-postgres capture")
    advanced = capture.endpoint.connector.config.get("advanced") or {}
    tables = tuple(
        SourceTable(b.resource["namespace"], b.resource["stream"], b.target, key_fields(catalog, b.target))
        for b in capture.bindings
        if not b.disable
    )
    by_collection = {t.collection: t for t in tables}
    name, materialization = materialization_of(catalog, set(by_collection))
    config = materialization.endpoint.connector.config if materialization else {}
    bindings, sources = [], {}
    for index, binding in enumerate(materialization.bindings if materialization else []):
        table = by_collection.get(binding.source_name)
        if table is None or binding.disable:
            continue
        properties = catalog.collections[binding.source_name].document_schema.get("properties") or {}
        bindings.append(
            TableBinding(
                index,
                binding.resource["table"],
                binding.source_name,
                table.key,
                bool(binding.resource.get("delta_updates")),
                binding_columns(conn, table, properties),
            )
        )
        sources[index] = table.qualified
    return Plan(
        capture=capture_name,
        materialization=name,
        publication=advanced.get("publicationName", "flow_publication"),
        slot=advanced.get("slotName", "flow_slot"),
        tables=tables,
        bindings=tuple(bindings),
        sources=sources,
        hard_delete=bool(config.get("hardDelete", False)),
        database=str(config.get("database", "SOPHIA")),
        schema=str(config.get("schema", "RAW")),
    )

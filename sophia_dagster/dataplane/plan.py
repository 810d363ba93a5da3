"""Which parts of a Flow catalog the embedded data plane can run, and how: catalog -> a pipeline plan.

A plan is one ``source-postgres`` capture plus the ``materialize-snowflake`` bindings that read its
collections or the collections of the SQLite derivations of them (:mod:`.derive`); HubSpot captures have theirs in
:mod:`.hubspot_pipeline`. Other connectors, and derivations that cannot run here, are reported with why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from sophia_dagster.dataplane.capture import SourceTable
from sophia_dagster.dataplane.derive import DerivationSpec
from sophia_dagster.dataplane.derive_plan import derivation_spec, reductions
from sophia_dagster.dataplane.errors import NotRunnableHereError
from sophia_dagster.dataplane.identifiers import column_name
from sophia_dagster.dataplane.materialize import Column, TableBinding
from sophia_dagster.dataplane.values import (
    BOOL_OID,
    DATE_OID,
    FLOAT_OIDS,
    INT_OIDS,
    JSON_OIDS,
    TIMESTAMP_OID,
    TIMESTAMPTZ_OID,
    PgType,
    resolve_types,
)
from sophia_dagster.estuary.catalog import Capture, Catalog, Collection, Materialization, MaterializationBinding

POSTGRES_CONNECTORS = {"source-postgres"}
HUBSPOT_CONNECTORS = {"source-hubspot-native"}
SNOWFLAKE_CONNECTORS = {"materialize-snowflake"}


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
    derivations: tuple[DerivationSpec, ...] = ()

    @property
    def tasks(self) -> tuple[str, ...]:
        derived = tuple(d.name for d in self.derivations)
        return (
            (self.capture, *derived) if self.materialization is None else (self.capture, self.materialization, *derived)
        )


def warehouse_type(pg_type: PgType) -> str:
    """The warehouse column type that holds a PostgreSQL column's document values without loss.

    numeric is ``VARCHAR`` holding the exact decimal text (NaN and the infinities included): what Estuary's
    materialize-snowflake creates for a ``format: number`` string with the field option ``castToString``.
    Its default there, ``FLOAT``, keeps about 16 significant digits, so it would change values.
    """
    if pg_type.element or pg_type.oid in JSON_OIDS:
        return "VARIANT"
    if pg_type.oid in INT_OIDS:
        return "NUMBER(38,0)"
    if pg_type.oid in FLOAT_OIDS:
        return "FLOAT"
    if pg_type.oid == BOOL_OID:
        return "BOOLEAN"
    if pg_type.oid == DATE_OID:
        return "DATE"
    if pg_type.oid in (TIMESTAMP_OID, TIMESTAMPTZ_OID):
        return "TIMESTAMP_TZ"
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


def schema_columns(properties: dict[str, Any]) -> tuple[Column, ...]:
    """A column per top-level property of a collection schema (``_meta`` aside), typed by :func:`schema_type`."""
    return tuple(Column(name, schema_type(prop)) for name, prop in properties.items() if name != "_meta")


def source_columns(conn: psycopg.Connection, table: SourceTable) -> list[tuple[str, str]]:
    """``(column, warehouse type)`` of the source table's published columns, in table order."""
    rows = conn.execute(
        "SELECT a.attname, a.atttypid::int FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''"
        " ORDER BY a.attnum",
        (table.namespace, table.name),
    ).fetchall()
    types = resolve_types(conn, [oid for _, oid in rows])
    return [(name, warehouse_type(types[oid])) for name, oid in rows]


def binding_columns(
    conn: psycopg.Connection, table: SourceTable, properties: dict[str, Any], excluded: frozenset[str], where: str
) -> tuple[Column, ...]:
    """The source's columns, then the collection schema's other top-level properties, less ``excluded``."""
    columns = [Column(name, kind) for name, kind in source_columns(conn, table)]
    known = {c.name for c in columns}
    columns += [Column(name, schema_type(prop)) for name, prop in properties.items() if name not in known | {"_meta"}]
    return checked_columns(columns, excluded, where)


def checked_columns(columns: list[Column], excluded: frozenset[str], where: str) -> tuple[Column, ...]:
    """``columns`` less ``excluded``.

    Two fields whose Snowflake names differ only in case (``Value`` and ``value`` both become ``VALUE``) are
    refused, naming both: exclude one of them (``flow_document`` still holds both values).
    """
    columns = [c for c in columns if c.name not in excluded]
    seen: dict[str, str] = {}
    for column in columns:
        other = seen.setdefault(column_name(column.name).upper(), column.name)
        if other != column.name:
            raise NotRunnableHereError(
                f"{where}: fields {other!r} and {column.name!r} would both be column "
                f"{column_name(column.name).upper()} of the warehouse table (Snowflake names differ by more than "
                f"case only when quoted, and unquoted names are upper-cased); add one of them to the binding's "
                f"fields.exclude (flow_document keeps both values)"
            )
    return tuple(columns)


def key_fields(catalog: Catalog, collection: str) -> tuple[str, ...]:
    """The top-level fields of a collection's key (nested keys cannot run locally)."""
    fields = []
    for pointer in catalog.collections[collection].key:
        parts = pointer.strip("/").split("/")
        if len(parts) != 1:
            raise NotRunnableHereError(f"collection {collection}: nested key {pointer!r} is not supported locally")
        fields.append(parts[0])
    return tuple(fields)


def derivation_reason(catalog: Catalog, task: str) -> str | None:
    """Why derivation ``task`` does not run here, or None when it does: a SQLite derivation whose every source is a
    collection of one source-postgres capture, whose collection a runnable materialize-snowflake binding reads, and
    whose schema has no reduction other than last-write-wins."""
    derive = catalog.collections[task].derive
    if derive.language != "sqlite":
        return f"derivation {task} uses {derive.language}, which runs only in Estuary; publish it in dev/prod."
    why = _sources_reason(catalog, task) or _collection_reason(catalog, task)
    return f"derivation {task} (SQLite) runs only in Estuary: {why}. Publish it in dev/prod." if why else None


def _sources_reason(catalog: Catalog, task: str) -> str | None:
    transforms = [t for t in catalog.collections[task].derive.transforms if not t.disable]
    writers = {b.target: name for name, c in catalog.captures.items() for b in c.bindings if not b.disable}
    for transform in transforms:
        source, writer = transform.source_name, writers.get(transform.source_name)
        where = f"transform {transform.name}"
        if source in catalog.derivations:
            return f"{where} reads derivation {source}; derivations of derivations run only in Estuary"
        if writer is None:
            return f"{where} reads {source}, which no capture of this catalog writes"
        if catalog.captures[writer].endpoint.connector.name not in POSTGRES_CONNECTORS:
            return f"{where} reads {source} of {writer}; locally derivations read source-postgres captures only"
        selector = None if isinstance(transform.source, str) else transform.source.model_dump(exclude={"name"})
        if transform.readDelay or any((selector or {}).values()):
            return f"{where} uses readDelay or a source selector (partitions, notBefore, notAfter)"
    if len({writers[t.source_name] for t in transforms}) > 1:
        return "its transforms read collections of more than one capture; locally they come from one"
    return None if transforms else "it has no enabled transform"


def _collection_reason(catalog: Catalog, task: str) -> str | None:
    merged = reductions(catalog.collections[task].document_schema)
    if merged:
        return f"its schema reduces documents ({', '.join(merged)}); locally the last document per key is kept"
    try:
        unlisted = set(key_fields(catalog, task)) - set(catalog.schema_properties(task) or {})
        capture = captures_of(catalog, task)
        bound = materialization_of(catalog, set(catalog.collections_of(capture[0])))[1] if capture else None
    except NotRunnableHereError as exc:
        return str(exc)
    if unlisted:
        return f"its key fields {sorted(unlisted)} are not properties of its schema"
    if bound is None or not any(b.source_name == task and not b.disable for b in bound.bindings):
        return "no materialize-snowflake binding running with its capture reads it, so nothing here would keep it"
    return None


def runnable_reason(catalog: Catalog, task: str) -> str | None:
    """Why ``task`` cannot run in the embedded data plane, or None when it can."""
    model = catalog.tasks[task]
    if isinstance(model, Collection):
        return derivation_reason(catalog, task)
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
    """The runnable captures feeding ``task`` (itself when it is a capture; for a derivation or a materialization,
    those writing the collections it reads, directly or through a derivation), in catalog order."""
    if task in catalog.captures:
        return [task]
    sources = set(catalog.collections_of(task))
    sources |= {s for d in sources & set(catalog.derivations) for s in catalog.collections_of(d)}
    return [
        name
        for name, capture in catalog.captures.items()
        if any(b.target in sources for b in capture.bindings) and runnable_reason(catalog, name) is None
    ]


def local_derivations(catalog: Catalog, capture: str) -> list[str]:
    """The derivations that run here reading collections of ``capture``."""
    return [
        name
        for name in catalog.derivations
        if captures_of(catalog, name) == [capture] and derivation_reason(catalog, name) is None
    ]


def materialization_of(catalog: Catalog, collections: set[str]) -> tuple[str | None, Materialization | None]:
    """The one runnable materialization reading any of ``collections`` (None when there is none)."""
    names = [
        name
        for name, m in catalog.materializations.items()
        if runnable_reason(catalog, name) is None and any(b.source_name in collections for b in m.bindings)
    ]
    if len(names) > 1:
        raise NotRunnableHereError(
            f"{len(names)} materializations read the same captured collections; one runs locally"
        )
    return (names[0], catalog.materializations[names[0]]) if names else (None, None)


def build_plan(
    catalog: Catalog, capture_name: str, conn: psycopg.Connection, *, default_database: str, default_schema: str
) -> Plan:
    """The plan that runs PostgreSQL capture ``capture_name`` and the warehouse bindings reading its collections.

    ``default_database`` and ``default_schema`` name the warehouse location when the materialization's config
    does not (or when no materialization reads the capture).
    """
    capture = catalog.captures[capture_name]
    if capture.endpoint.connector.name not in POSTGRES_CONNECTORS:
        raise NotRunnableHereError(f"capture {capture_name} is not a source-postgres capture")
    advanced = capture.endpoint.connector.config.get("advanced") or {}
    tables = tuple(
        SourceTable(b.resource["namespace"], b.resource["stream"], b.target, key_fields(catalog, b.target))
        for b in capture.bindings
        if not b.disable
    )
    by_collection = {t.collection: t for t in tables}
    name, materialization = materialization_of(catalog, set(by_collection))
    config = materialization.endpoint.connector.config if materialization else {}
    derived = _derivations(catalog, capture_name, conn, tables)
    bindings, sources = [], {}
    for index, binding in enumerate(materialization.bindings if materialization else []):
        table = by_collection.get(binding.source_name)
        if binding.disable or (table is None and binding.source_name not in derived):
            continue
        properties = catalog.collections[binding.source_name].document_schema.get("properties") or {}
        excluded = frozenset((binding.fields or {}).get("exclude") or ())
        where = f"materialization {name} binding {binding.resource['table']!r}"
        if table is None:
            bindings.append(_derived_binding(catalog, index, binding, excluded, where))
            sources[index] = derived[binding.source_name].source
            continue
        bindings.append(
            TableBinding(
                index,
                binding.resource["table"],
                binding.source_name,
                table.key,
                bool(binding.resource.get("delta_updates")),
                binding_columns(conn, table, properties, excluded, where),
                excluded,
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
        database=str(config.get("database", default_database)),
        schema=str(config.get("schema", default_schema)),
        derivations=tuple(d for d in derived.values() if d.source in sources.values()),
    )


def _derivations(
    catalog: Catalog, capture: str, conn: psycopg.Connection, tables: tuple[SourceTable, ...]
) -> dict[str, DerivationSpec]:
    """The specs of the derivations running here from ``capture``'s ``tables``, by name."""
    by_collection = {t.collection: t for t in tables}
    by_name = {t.qualified: t for t in tables}
    return {
        name: derivation_spec(
            catalog,
            name,
            {c: t.qualified for c, t in by_collection.items()},
            {c: t.key for c, t in by_collection.items()},
            lambda qualified: [column for column, _ in source_columns(conn, by_name[qualified])],
        )
        for name in local_derivations(catalog, capture)
    }


def _derived_binding(
    catalog: Catalog, index: int, binding: MaterializationBinding, excluded: frozenset[str], where: str
) -> TableBinding:
    """The warehouse binding of a derived collection: a column per property of its schema."""
    collection = binding.source_name
    columns = checked_columns(list(schema_columns(catalog.schema_properties(collection) or {})), excluded, where)
    delta = bool(binding.resource.get("delta_updates"))
    return TableBinding(
        index, binding.resource["table"], collection, key_fields(catalog, collection), delta, columns, excluded
    )

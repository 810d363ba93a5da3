"""What a SQLite derivation needs to run here, read from the catalog: its source collections' fields (the
``$parameters`` its lambdas may name), its migrations and transforms, and the schema annotations it cannot honour."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sophia_dagster.dataplane.derive import DerivationSpec, TransformSpec
from sophia_dagster.dataplane.lambdas import ROOT_FIELD, Field
from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.estuary.catalog.schemas import SchemaIndex

CAPTURE_META_FIELDS = (
    "_meta",
    "_meta/op",
    "_meta/before",
    "_meta/source",
    *(f"_meta/source/{name}" for name in ("schema", "table", "ts_ms", "snapshot", "loc", "txid")),
)
"""The ``_meta`` locations every document of a source-postgres capture has (Estuary's capture schema)."""
MAX_FIELD_DEPTH = 3
KEEPS_LAST = {"lastWriteWins"}


def source_fields(catalog: Catalog, collection: str, columns: Iterable[str]) -> dict[str, Field]:
    """The fields a lambda reading ``collection`` may bind: the schema's properties (nested ones as ``a/b``), the
    source table's ``columns``, ``_meta`` and ``flow_document``."""
    schema = catalog.collections[collection].document_schema
    index = SchemaIndex(schema)
    fields = {name: Field(name) for name in (ROOT_FIELD, *CAPTURE_META_FIELDS, *columns)}
    for name, prop in _nested(index, index.properties() or {}, "", 0):
        fields[name] = Field(
            name,
            prop.get("format") if isinstance(prop, dict) else None,
            isinstance(prop, dict) and prop.get("contentEncoding") == "base64",
        )
    return fields


def _nested(index: SchemaIndex, properties: Mapping[str, Any], prefix: str, depth: int) -> Iterator[tuple[str, Any]]:
    for name, prop in properties.items():
        yield prefix + name, prop
        inner = index.properties(prop) if depth < MAX_FIELD_DEPTH else None
        if inner:
            yield from _nested(index, inner, f"{prefix}{name}/", depth + 1)


def reductions(schema: Any, where: str = "") -> list[str]:
    """Locations of ``reduce`` annotations other than last-write-wins (they merge documents; not done here)."""
    found = []
    if isinstance(schema, Mapping):
        strategy = (schema.get("reduce") or {}).get("strategy") if isinstance(schema.get("reduce"), Mapping) else None
        if strategy is not None and strategy not in KEEPS_LAST:
            found.append(f"{where or '/'} ({strategy})")
        for key, value in schema.items():
            found += reductions(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            found += reductions(item, f"{where}/{i}")
    return found


def derivation_spec(
    catalog: Catalog, name: str, tables: Mapping[str, str], keys: Mapping[str, tuple[str, ...]], columns: Any
) -> DerivationSpec:
    """The spec of derivation ``name``: ``tables`` and ``keys`` give each source collection's table and key,
    ``columns(table)`` the table's column names."""
    derive = catalog.collections[name].derive
    transforms = tuple(
        TransformSpec(
            t.name,
            t.source_name,
            tables[t.source_name],
            t.lambda_ or "",
            keys[t.source_name],
            source_fields(catalog, t.source_name, columns(tables[t.source_name])),
        )
        for t in derive.transforms
        if not t.disable
    )
    return DerivationSpec(name, tuple(derive.using["sqlite"].get("migrations") or ()), transforms)

"""Backfill documents built by PostgreSQL itself: one JSON document per row (``row_to_json``).

Values take the formats :mod:`.values` gives streamed changes (numeric as exact strings, timestamps as
RFC 3339 UTC with ``Z``, bytea as base64, json/jsonb parsed, arrays as JSON arrays), so a million-row
snapshot never passes through Python one row at a time. Arrays of numeric, timestamps or bytea are built
element by element and come out one-dimensional.
"""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql

from sophia_dagster.dataplane.values import (
    ARRAY_ELEMENTS,
    BOOL_OID,
    BYTEA_OID,
    FLOAT_OIDS,
    INT_OIDS,
    JSON_OIDS,
    NUMERIC_OID,
    TIMESTAMP_OID,
    TIMESTAMPTZ_OID,
)

NATIVE = INT_OIDS | FLOAT_OIDS | JSON_OIDS | {BOOL_OID}
"""Types ``row_to_json`` already writes as the document value."""

TEXTUAL_ELEMENTS = {NUMERIC_OID, TIMESTAMP_OID, TIMESTAMPTZ_OID, BYTEA_OID}


def _scalar(value: sql.Composable, type_oid: int) -> sql.Composable:
    if type_oid in NATIVE:
        return value
    if type_oid == TIMESTAMPTZ_OID:
        return sql.SQL("replace(regexp_replace({}::text, '\\+00$', 'Z'), ' ', 'T')").format(value)
    if type_oid == TIMESTAMP_OID:
        return sql.SQL("CASE WHEN isfinite({v}) THEN replace({v}::text, ' ', 'T') || 'Z' ELSE {v}::text END").format(
            v=value
        )
    if type_oid == BYTEA_OID:
        return sql.SQL("translate(encode({}, 'base64'), E'\\n', '')").format(value)
    return sql.SQL("{}::text").format(value)


def value_sql(column: str, type_oid: int, element_oid: int) -> sql.Composable:
    """An expression whose ``row_to_json`` rendering is ``column``'s document value."""
    ident = sql.Identifier(column)
    element = ARRAY_ELEMENTS.get(type_oid, element_oid)
    if not element:
        return _scalar(ident, type_oid)
    if element not in TEXTUAL_ELEMENTS:
        return ident
    return sql.SQL(
        "CASE WHEN {c} IS NOT NULL THEN COALESCE((SELECT json_agg({e} ORDER BY i) FROM unnest({c}) WITH ORDINALITY"
        " AS u(e, i)), '[]'::json) END"
    ).format(c=ident, e=_scalar(sql.Identifier("e"), element))


def documents_sql(table: sql.Composable, columns: list[tuple[str, int, int]], meta: dict[str, Any]) -> sql.Composable:
    """A query of one JSON document per row of ``table``: its columns plus ``_meta``."""
    items = [
        sql.SQL("{} AS {}").format(value_sql(name, oid, elem), sql.Identifier(name)) for name, oid, elem in columns
    ]
    items.append(sql.SQL("{}::json AS {}").format(sql.Literal(json.dumps(meta)), sql.Identifier("_meta")))
    return sql.SQL("SELECT row_to_json(r) FROM (SELECT {} FROM {}) r").format(sql.SQL(", ").join(items), table)

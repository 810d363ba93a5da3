"""Source discovery for new captures: a PostgreSQL schema's tables as Flow collection schemas.

The JSON types follow Estuary's source-postgres discovery: integers and booleans as themselves, numeric as
``string`` with ``format: number`` (so no digit is lost), timestamps and dates as formatted strings, json and
jsonb as any value, arrays as arrays of their element type, and every nullable column admitting ``null``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

INTEGER_TYPES = {"int2", "int4", "int8", "oid"}
FORMATS = {
    "numeric": "number",
    "uuid": "uuid",
    "date": "date",
    "timestamp": "date-time",
    "timestamptz": "date-time",
    "time": "time",
    "timetz": "time",
}
COLUMNS_SQL = """
SELECT c.table_name, c.column_name, c.udt_name, c.is_nullable = 'YES', c.ordinal_position
FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = %s AND t.table_type = 'BASE TABLE'
ORDER BY c.table_name, c.ordinal_position
"""
KEYS_SQL = """
SELECT tc.table_name, k.column_name
FROM information_schema.table_constraints tc
JOIN information_schema.key_column_usage k
  ON k.constraint_schema = tc.constraint_schema AND k.constraint_name = tc.constraint_name
WHERE tc.table_schema = %s AND tc.constraint_type = 'PRIMARY KEY'
ORDER BY tc.table_name, k.ordinal_position
"""


class DiscoveryError(ValueError):
    """The tables asked for cannot be captured as they are; the message names them and why."""


@dataclass(frozen=True)
class DiscoveredTable:
    """One source table: its columns as JSON schemas and its primary key."""

    schema: str
    name: str
    columns: dict[str, dict[str, Any]]
    required: tuple[str, ...]
    key: tuple[str, ...]


def json_schema(udt_name: str, nullable: bool) -> dict[str, Any]:
    """The collection schema of one column, from its PostgreSQL type name (``_int4`` is an int4 array)."""
    if udt_name.startswith("_"):
        base: dict[str, Any] = {"type": "array", "items": json_schema(udt_name[1:], True)}
    elif udt_name in ("json", "jsonb"):
        return {}
    elif udt_name in INTEGER_TYPES:
        base = {"type": "integer"}
    elif udt_name in ("float4", "float8"):
        base = {"type": "number"}
    elif udt_name == "bool":
        base = {"type": "boolean"}
    elif udt_name == "bytea":
        base = {"type": "string", "contentEncoding": "base64"}
    else:
        base = {"type": "string", **({"format": FORMATS[udt_name]} if udt_name in FORMATS else {})}
    if nullable:
        base["type"] = [base["type"], "null"]
    return base


def discover_tables(dsn: str, schema: str, tables: Sequence[str] | None = None) -> list[DiscoveredTable]:
    """The named tables of ``schema`` (every table with a primary key when ``tables`` is None), with columns and keys.

    Raises ``DiscoveryError`` naming tables that do not exist or have no primary key.
    """
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        columns = conn.execute(COLUMNS_SQL, (schema,)).fetchall()
        keys = conn.execute(KEYS_SQL, (schema,)).fetchall()
    found: dict[str, dict[str, tuple[str, bool]]] = {}
    for table, column, udt_name, nullable, _ in columns:
        found.setdefault(table, {})[column] = (udt_name, nullable)
    key_of: dict[str, list[str]] = {}
    for table, column in keys:
        key_of.setdefault(table, []).append(column)
    wanted = list(tables) if tables is not None else sorted(key_of)
    missing = [t for t in wanted if t not in found]
    if missing:
        raise DiscoveryError(f"no such table in schema {schema!r}: {', '.join(missing)}")
    keyless = [t for t in wanted if t not in key_of]
    if keyless:
        raise DiscoveryError(f"tables without a primary key cannot be captured by key: {', '.join(keyless)}")
    return [_table(schema, name, found[name], key_of[name]) for name in wanted]


def _table(schema: str, name: str, columns: dict[str, tuple[str, bool]], key: list[str]) -> DiscoveredTable:
    return DiscoveredTable(
        schema=schema,
        name=name,
        columns={
            column: json_schema(udt, nullable and column not in key) for column, (udt, nullable) in columns.items()
        },
        required=tuple(column for column, (_, nullable) in columns.items() if not nullable or column in key),
        key=tuple(key),
    )

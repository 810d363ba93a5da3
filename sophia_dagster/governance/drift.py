"""Schema drift: the source table's columns and the warehouse table's columns against the collection's
JSON schema, named one by one (added, dropped, type changed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from sophia_dagster.governance.parity import Query
from sophia_dagster.governance.tables import GovernedTable, SourceTable

WAREHOUSE_ONLY_COLUMNS = {"_META/OP", "FLOW_PUBLISHED_AT", "FLOW_DOCUMENT"}
"""Columns every materialized table has besides the collection's properties."""

_FAMILIES = (
    ("json", ("json", "variant", "object", "array", "[]", "map", "struct")),
    ("timestamp", ("timestamp",)),
    ("date", ("date",)),
    ("boolean", ("bool",)),
    ("integer", ("int", "serial")),
    ("number", ("numeric", "number", "decimal", "double", "float", "real")),
    ("string", ("char", "text", "string", "uuid", "varchar")),
)


def type_family(type_name: str) -> str:
    """A database type name's family (``timestamp with time zone`` -> ``timestamp``, ``NUMBER`` -> ``number``)."""
    lowered = type_name.lower()
    for family, words in _FAMILIES:
        if any(word in lowered for word in words):
            return family
    return lowered


def schema_families(prop: Any) -> set[str]:
    """The type families a JSON-schema property accepts."""
    if not isinstance(prop, dict):
        return {"json"}
    types = prop.get("type")
    names = {t for t in ([types] if isinstance(types, str) else types or []) if t != "null"}
    families = set()
    for name in names:
        if name == "integer":
            families |= {"integer", "number"}
        elif name == "number":
            families |= {"number", "integer"}
        elif name == "boolean":
            families.add("boolean")
        elif name == "string":
            fmt = prop.get("format")
            families |= {
                "date-time": {"timestamp"},
                "date": {"date"},
                "number": {"number", "string"},
                "integer": {"integer", "number", "string"},
            }.get(fmt, {"string"})
        else:
            families.add("json")
    return families or {"json"}


@dataclass
class Drift:
    """Differences between one side's columns and the collection schema."""

    added: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    type_changed: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (self.added or self.dropped or self.type_changed)

    def describe(self, side: str) -> list[str]:
        """One line per difference, naming the side and the column."""
        return (
            [f"{side}: column {c} is not in the collection schema" for c in self.added]
            + [f"{side}: schema property {c} has no column" for c in self.dropped]
            + [f"{side}: {c}" for c in self.type_changed]
        )


def compare_columns(columns: Mapping[str, str], properties: Mapping[str, Any]) -> Drift:
    """Columns ``{name: type}`` vs schema ``{property: JSON schema}`` (names compared case-insensitively)."""
    by_upper = {name.upper(): (name, kind) for name, kind in columns.items()}
    props = {name.upper(): (name, prop) for name, prop in properties.items() if name != "_meta"}
    drift = Drift(
        added=sorted(by_upper[c][0] for c in by_upper.keys() - props.keys()),
        dropped=sorted(props[c][0] for c in props.keys() - by_upper.keys()),
    )
    for upper in sorted(by_upper.keys() & props.keys()):
        name, kind = by_upper[upper]
        allowed = schema_families(props[upper][1])
        if type_family(kind) not in allowed:
            drift.type_changed.append(f"{name} is {kind}, the schema says {'/'.join(sorted(allowed))}")
    return drift


def source_columns(conn: psycopg.Connection, table: SourceTable) -> dict[str, str]:
    """``{column: type}`` of a PostgreSQL table (arrays as ``type[]``)."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (table.namespace, table.name),
    ).fetchall()
    return dict(rows)


def warehouse_columns(query: Query, table: GovernedTable) -> dict[str, str]:
    """``{column: type}`` of a warehouse table, without the columns every materialized table has."""
    rows = query(
        f"SELECT column_name, data_type FROM {table.database}.information_schema.columns "
        f"WHERE table_schema = '{table.schema.upper()}' AND table_name = '{table.table.upper()}'"
    )
    return {str(name): str(kind) for name, kind in rows if str(name).upper() not in WAREHOUSE_ONLY_COLUMNS}


def drift_lines(sides: Iterable[tuple[str, Drift]]) -> list[str]:
    """Every difference of every side, one line each."""
    return [line for side, drift in sides for line in drift.describe(side)]

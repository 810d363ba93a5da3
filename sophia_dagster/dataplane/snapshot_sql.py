"""Backfill rows read by PostgreSQL's ``COPY``: one CSV row per source row, built in SQL when it can be.

For tables whose columns all have a SQL form below, PostgreSQL builds each document itself
(``row_to_json``) next to every column's value text, so a million-row snapshot never passes through
Python one row at a time. The SQL forms write exactly what :mod:`.values` writes for streamed changes
(the test suite compares both). Any other table is read as plain text output, which the capture converts
with :mod:`.values` row by row: the streaming path's own code, so both agree by construction.
"""

from __future__ import annotations

from psycopg import sql

from sophia_dagster.dataplane.values import (
    BOOL_OID,
    BYTEA_OID,
    DATE_OID,
    FLOAT_OIDS,
    INT_OIDS,
    JSON_OIDS,
    NUMERIC_OID,
    TEXT_OUTPUT_OIDS,
    TIMESTAMP_OID,
    TIMESTAMPTZ_OID,
    PgType,
)

NATIVE = INT_OIDS | FLOAT_OIDS | JSON_OIDS | {BOOL_OID}
"""Types ``row_to_json`` already writes as the document value."""

NATIVE_ELEMENTS = NATIVE | TEXT_OUTPUT_OIDS
"""Array element types ``array_to_json`` writes as the document value (keeping every dimension)."""

_BC_YEAR = (
    "CASE WHEN split_part({t}, '-', 1)::int = 1 THEN '0000'"
    " ELSE '-' || lpad((split_part({t}, '-', 1)::int - 1)::text, 4, '0') END"
    " || replace(substr({t}, strpos({t}, '-')), ' BC', '')"
)
"""``'0044-03-15 ... BC'`` -> ``'-0043-03-15 ...'``: ISO 8601's astronomical year, as :mod:`.values` does."""

_TEMPORAL = {
    TIMESTAMPTZ_OID: ("replace(replace({t}, ' ', 'T'), '+00', 'Z')", "'0001-01-01 00:00:00+00'::timestamptz"),
    TIMESTAMP_OID: ("replace({t}, ' ', 'T') || 'Z'", "'0001-01-01 00:00:00'::timestamp"),
    DATE_OID: ("{t}", "'0001-01-01'::date"),
}


def _temporal(value: sql.Composable, type_oid: int) -> sql.Composable:
    ad, first_day = _TEMPORAL[type_oid]
    bc = ad.format(t=_BC_YEAR.format(t="{v}::text"))
    return sql.SQL(
        "CASE WHEN NOT isfinite({v}) THEN {v}::text WHEN {v} >= "
        + first_day
        + " THEN "
        + ad.format(t="{v}::text")
        + " ELSE "
        + bc
        + " END"
    ).format(v=value)


def value_sql(column: str, pg_type: PgType) -> sql.Composable | None:
    """An expression whose ``row_to_json`` rendering is ``column``'s document value, or None if it has none."""
    ident = sql.Identifier(column)
    if pg_type.element:
        native = pg_type.element in NATIVE_ELEMENTS or pg_type.enum
        return sql.SQL("array_to_json({})").format(ident) if native else None
    if pg_type.oid in NATIVE or pg_type.oid in TEXT_OUTPUT_OIDS or pg_type.enum:
        return ident
    if pg_type.oid == NUMERIC_OID:
        return sql.SQL("{}::text").format(ident)
    if pg_type.oid == BYTEA_OID:
        return sql.SQL("translate(encode({}, 'base64'), E'\\n', '')").format(ident)
    if pg_type.oid in _TEMPORAL:
        return _temporal(ident, pg_type.oid)
    return None


def documents_sql(table: sql.Composable, columns: list[tuple[str, PgType]]) -> sql.Composable | None:
    """A query of each row's document (without ``_meta``, which is the same for every row of a backfill) then its
    column values, or None when a column has no SQL form.

    The row's alias differs from every column name (a column called ``r`` must not shadow it)."""
    values = [value_sql(name, pg_type) for name, pg_type in columns]
    if any(v is None for v in values):
        return None
    items = [sql.SQL("{} AS {}").format(v, sql.Identifier(name)) for v, (name, _) in zip(values, columns, strict=True)]
    row = "r"
    while row in {name for name, _ in columns}:
        row += "_"
    picked = [sql.SQL("{}.{}").format(sql.Identifier(row), sql.Identifier(name)) for name, _ in columns]
    return sql.SQL("SELECT row_to_json({row}), {} FROM (SELECT {} FROM {}) {row}").format(
        sql.SQL(", ").join(picked), sql.SQL(", ").join(items), table, row=sql.Identifier(row)
    )


def text_sql(table: sql.Composable, columns: list[tuple[str, PgType]]) -> sql.Composable:
    """A query of each row's column values as text output, for conversion by :mod:`.values`."""
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns), table)

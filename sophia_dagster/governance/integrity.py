"""Warehouse integrity: one row per collection key, no NULL key, and the source's foreign keys holding
among the warehouse's live rows. Every query runs in the warehouse; only keys come back, never values."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from sophia_dagster.governance.parity import Query
from sophia_dagster.governance.tables import GovernedTable, SourceTable, quote


@dataclass(frozen=True)
class Uniqueness:
    """Duplicate and NULL keys of one table."""

    rows: int
    duplicated_keys: int
    null_keys: int
    sample_keys: list[str]

    @property
    def passed(self) -> bool:
        return self.duplicated_keys == 0 and self.null_keys == 0


def _key_text(table: GovernedTable, alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return " || '|' || ".join(f"COALESCE(CAST({prefix}{quote(f)} AS VARCHAR), '<null>')" for f in table.key_fields)


def check_uniqueness(query: Query, table: GovernedTable, sample: int = 20) -> Uniqueness:
    """Count keys held by more than one row (soft-deleted rows included: a key has one row) and NULL keys."""
    key = _key_text(table)
    nulls = " OR ".join(f"{quote(f)} IS NULL" for f in table.key_fields)
    ((rows, null_keys),) = query(f"SELECT COUNT(*), COUNT_IF({nulls}) FROM {table.sql}")
    grouped = f"SELECT {key} AS k FROM {table.sql} GROUP BY 1 HAVING COUNT(*) > 1"
    ((duplicated,),) = query(f"SELECT COUNT(*) FROM ({grouped}) d")
    keys = [str(r[0]) for r in query(f"{grouped} ORDER BY 1 LIMIT {sample}")] if duplicated and sample else []
    return Uniqueness(int(rows), int(duplicated), int(null_keys or 0), keys)


@dataclass(frozen=True)
class ForeignKey:
    """A source foreign key: ``child.columns`` references ``parent.referenced``."""

    name: str
    child: SourceTable
    columns: tuple[str, ...]
    parent: SourceTable
    referenced: tuple[str, ...]

    def describe(self) -> str:
        """``deals.company_id -> companies.id``."""
        return f"{self.child.name}.{','.join(self.columns)} -> {self.parent.name}.{','.join(self.referenced)}"


FOREIGN_KEYS_SQL = """
SELECT con.conname, n.nspname, t.relname, rn.nspname, rt.relname,
  ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord),
  ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)
FROM pg_constraint con
JOIN pg_class t ON t.oid = con.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class rt ON rt.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = rt.relnamespace
WHERE con.contype = 'f' AND n.nspname = %s AND t.relname = %s
ORDER BY con.conname
"""


def source_foreign_keys(conn: psycopg.Connection, table: SourceTable) -> list[ForeignKey]:
    """The foreign keys PostgreSQL declares on ``table``."""
    rows = conn.execute(FOREIGN_KEYS_SQL, (table.namespace, table.name)).fetchall()
    return [
        ForeignKey(name, SourceTable(ns, rel), tuple(cols), SourceTable(rns, rrel), tuple(refs))
        for name, ns, rel, rns, rrel, cols, refs in rows
    ]


@dataclass(frozen=True)
class Orphans:
    """Live child rows whose foreign key names no live parent row."""

    foreign_key: ForeignKey
    count: int
    sample_keys: list[str]


def check_foreign_key(
    query: Query, child: GovernedTable, parent: GovernedTable, fk: ForeignKey, sample: int = 20
) -> Orphans:
    """Count the child's live rows whose non-NULL foreign key has no live row in the parent table."""
    present = " AND ".join(f"c.{quote(col)} IS NOT NULL" for col in fk.columns)
    join = " AND ".join(f"p.{quote(ref)} = c.{quote(col)}" for col, ref in zip(fk.columns, fk.referenced, strict=True))
    orphans = (
        f"FROM {child.sql} c WHERE {child.live('c')} AND {present} "
        f"AND NOT EXISTS (SELECT 1 FROM {parent.sql} p WHERE {parent.live('p')} AND {join})"
    )
    ((count,),) = query(f"SELECT COUNT(*) {orphans}")
    keys = []
    if count and sample:
        keys = [str(r[0]) for r in query(f"SELECT {_key_text(child, 'c')} AS k {orphans} ORDER BY 1 LIMIT {sample}")]
    return Orphans(fk, int(count), keys)

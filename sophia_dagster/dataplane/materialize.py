"""The warehouse side of the embedded data plane: Estuary's materialize-snowflake semantics over any
Snowflake connection (the embedded warehouse locally).

Each commit applies every binding's documents, with their column values as text, and moves the checkpoint
(the source LSN reached per binding) in ONE transaction, so a crash at any point leaves either both or
neither. A streamed batch of up to ``SMALL_BATCH_ROWS`` rows is bound to the statements that apply it as
one JSON array (qmark bindings: :func:`data_plane_connection`); a larger one is bulk-loaded into a staging
table first (Parquet -> PUT -> COPY INTO). A backfill's files are put to the stage and loaded straight into
the emptied table by one COPY with a transformation. Values are never re-parsed as JSON on the way: each
column is cast from its exact text, and ``flow_document`` stores the document's text as it was built.

- standard bindings keep one row per collection key: the batch's last document per key replaces the row;
  a delete removes it when ``hardDelete`` is on, otherwise the row stays with ``_meta/op = 'd'``;
- a backfill replaces the table (no key matching), adding the snapshot's ``_meta`` to each document;
- ``delta_updates`` bindings append every document;
- every table has the collection's columns plus ``_meta/op``, ``flow_published_at`` and ``flow_document``;
  names follow Estuary's Snowflake rules (:mod:`.identifiers`) and are always quoted.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from dagster_snowflake import SnowflakeResource

from sophia_dagster.dataplane.identifiers import column_name, ident
from sophia_dagster.dataplane.values import column_text, decode, encode
from sophia_dagster.warehouse.bulk import copy_staged, load_arrow, put_arrow
from sophia_dagster.warehouse.transactions import transaction

CHECKPOINTS = "FLOW_CHECKPOINTS_V1"
META_OP = "_meta/op"
PUBLISHED_AT = "flow_published_at"
DOCUMENT = "flow_document"
SMALL_BATCH_ROWS = 5_000
"""Up to this many rows travel with the statements that apply them, as one bound JSON array of strings (on the
embedded warehouse about 45 ms a statement for 100 rows, 85 ms for 1,000, 210 ms for 4,000); larger batches take
the bulk path into the staging table, whose PUT + COPY INTO costs about 0.45 s at any size and grows slowly."""


@dataclass(frozen=True)
class Column:
    """A materialized document field and its warehouse type."""

    name: str
    type: str

    def cast(self, staged: str) -> str:
        """SQL turning the staged text column ``staged`` into this column's type (text and JSON as they are)."""
        return staged if self.type == "VARCHAR" else f"CAST({staged} AS {self.type})"


@dataclass(frozen=True)
class TableBinding:
    """One materialization binding: a collection written into a warehouse table."""

    index: int
    table: str
    collection: str
    key: tuple[str, ...]
    delta: bool
    columns: tuple[Column, ...]
    excluded: frozenset[str] = frozenset()

    def key_positions(self) -> list[tuple[int, Column]]:
        by_name = {c.name: (i, c) for i, c in enumerate(self.columns)}
        return [by_name[k] for k in self.key]


@dataclass
class Load:
    """What one commit does to one binding: ``rows`` staged documents, after replacing or truncating the table."""

    rows: int
    replace: bool = False
    truncated: bool = False


def use_schema(cursor: Any, database: str, schema: str) -> None:
    """Create the target database and schema when missing, and make them the session's."""
    cursor.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}")
    cursor.execute(f"USE SCHEMA {database}.{schema}")


class Materializer:
    """Writes batches of documents and checkpoints for one materialization through a Snowflake cursor.

    ``staging_of`` names whose staging table this is (the materialization by default); captures feeding one
    materialization from separate processes each need their own.
    """

    def __init__(
        self, name: str, bindings: Sequence[TableBinding], hard_delete: bool, staging_of: str | None = None
    ) -> None:
        self.name = name
        self.bindings = {b.index: b for b in bindings}
        self.hard_delete = hard_delete
        self.staging = "FLOW_STAGING_" + re.sub(r"\W", "_", staging_of or name).upper()
        self.staging_width = -1
        self.staged_bytes: Counter = Counter()
        self.stored_checkpoints: set[str] = set()
        self.inline: dict[int, str] = {}
        """Per binding, the rows of a small batch as a JSON array of ``[op, doc, c0, ...]`` (see ``stage``)."""
        self.staged_in_table = False
        self.backfill_files: dict[int, tuple[str, str]] = {}
        """Per binding, the stage location of its backfill files and their ``_meta`` (see ``stage_values``)."""

    # setup -----------------------------------------------------------------------------------------------
    def setup(self, cursor: Any) -> None:
        """Create the checkpoint table and an empty staging table."""
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (materialization VARCHAR, binding VARCHAR, "
            "lsn NUMBER(38,0), updated_at TIMESTAMP_TZ)"
        )
        self._create_staging(cursor)

    def _create_staging(self, cursor: Any) -> None:
        """(Re)create the staging table: binding, op, doc and one text column per column of the widest binding."""
        self.staging_width = max((len(b.columns) for b in self.bindings.values()), default=0)
        staged = ["BINDING INT", "OP VARCHAR", "DOC VARCHAR", *(f"C{i} VARCHAR" for i in range(self.staging_width))]
        cursor.execute(f"CREATE OR REPLACE TABLE {self.staging} ({', '.join(staged)})")

    def ensure_table(self, cursor: Any, binding: TableBinding) -> list[str]:
        """Create ``binding``'s table or add the columns it lacks (widening the staging table if needed); returns
        the added column names."""
        if len(binding.columns) > self.staging_width:
            self._create_staging(cursor)
        columns = [
            *binding.columns,
            Column(META_OP, "VARCHAR"),
            Column(PUBLISHED_AT, "TIMESTAMP_TZ"),
            Column(DOCUMENT, "VARIANT"),
        ]
        existing = self.table_columns(cursor, binding.table)
        if not existing:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {ident(binding.table)} ("
                + ", ".join(f"{ident(c.name)} {c.type}" for c in columns)
                + ")"
            )
            return []
        added = [c for c in columns if column_name(c.name).upper() not in existing]
        for column in added:
            cursor.execute(f"ALTER TABLE {ident(binding.table)} ADD COLUMN {ident(column.name)} {column.type}")
        return [c.name for c in added]

    @staticmethod
    def table_columns(cursor: Any, table: str) -> set[str]:
        """Upper-cased column names of ``table`` in the current schema (empty when it does not exist)."""
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = CURRENT_SCHEMA() "
            "AND table_name = ?",
            (column_name(table),),
        )
        return {row[0].upper() for row in cursor.fetchall()}

    # checkpoints -----------------------------------------------------------------------------------------
    def checkpoints(self, cursor: Any) -> dict[str, int]:
        """The committed source LSN per binding table."""
        cursor.execute(f"SELECT binding, lsn FROM {CHECKPOINTS} WHERE materialization = ?", (self.name,))
        found = {table: int(lsn) for table, lsn in cursor.fetchall()}
        self.stored_checkpoints = set(found)
        return found

    def reset(self, cursor: Any) -> None:
        """Forget every checkpoint of this materialization (the next run backfills again)."""
        cursor.execute(f"DELETE FROM {CHECKPOINTS} WHERE materialization = ?", (self.name,))
        self.stored_checkpoints.clear()

    # commits ---------------------------------------------------------------------------------------------
    def commit(self, cursor: Any, loads: Mapping[int, Load], checkpoints: Mapping[str, int], published_at: str) -> None:
        """Move what is staged into the targets, empty the staging table and move ``checkpoints``, in one
        transaction."""
        with transaction(cursor):
            for index, load in loads.items():
                self._apply(cursor, self.bindings[index], load, published_at)
            if self.staged_in_table:
                cursor.execute(f"DELETE FROM {self.staging}")
            self._write_checkpoints(cursor, checkpoints)
        self.staged_bytes.clear()
        self.backfill_files.clear()
        self.inline.clear()
        self.staged_in_table = False
        self.stored_checkpoints.update(checkpoints)

    def stage(self, cursor: Any, batches: Mapping[int, list[dict[str, Any]]]) -> int:
        """Stage the documents of every binding for the next commit; returns the rows staged.

        A small batch waits in memory and is bound to the statements that apply it (no staging round trips);
        a large one is bulk-loaded into the staging table at once."""
        parts = [self._texts(index, documents) for index, documents in batches.items() if documents]
        if not parts:
            return 0
        table = pa.concat_tables(parts)
        if table.num_rows > SMALL_BATCH_ROWS:
            self.staged_in_table = True
            return load_arrow(cursor, table, self.staging, create=False)
        for index, rows in _rows_by_binding(table).items():
            self.inline[index] = json.dumps(rows, ensure_ascii=False)
        return table.num_rows

    def stage_values(
        self, cursor: Any, index: int, documents: pa.Array, values: Mapping[str, pa.Array], meta: Mapping[str, Any]
    ) -> int:
        """Stage backfilled documents (JSON text without ``_meta``) and their column values (text by field name;
        absent fields are NULL) for binding ``index``, whose table they replace at the next commit.

        They are uploaded as files and loaded straight into the table by that commit, which adds ``meta`` (the same
        for every document of a backfill) to each document: one pass, no staging table in between, since a
        backfill's target holds nothing to merge with."""
        binding = self.bindings[index]
        rows = len(documents)
        files = pa.table(
            {
                "DOC": documents,
                **{f"C{i}": values.get(c.name, pa.nulls(rows, pa.string())) for i, c in enumerate(binding.columns)},
            }
        )
        location, _ = self.backfill_files.get(index, (None, ""))
        meta_text = encode(dict(meta))
        self.backfill_files[index] = (put_arrow(cursor, files, location), meta_text)
        self.staged_bytes[index] += documents.nbytes + rows * (len(meta_text.encode()) + len(',"_meta":'))
        return rows

    def _texts(self, index: int, documents: list[dict[str, Any]]) -> pa.Table:
        binding = self.bindings[index]
        return self._table(
            index,
            pa.array([encode(doc) for doc in documents], pa.string()),
            {
                c.name: pa.array([column_text(doc.get(c.name)) for doc in documents], pa.string())
                for c in binding.columns
            },
            pa.array([doc["_meta"]["op"] for doc in documents], pa.string()),
        )

    def _table(self, index: int, documents: pa.Array, values: Mapping[str, pa.Array], ops: pa.Array) -> pa.Table:
        rows = len(documents)
        binding = self.bindings[index]
        texts = [values[c.name] for c in binding.columns]
        texts += [pa.nulls(rows, pa.string())] * (self.staging_width - len(texts))
        self.staged_bytes[index] += documents.nbytes
        return pa.table(
            {
                "BINDING": pa.repeat(pa.scalar(index, pa.int32()), rows),
                "OP": ops,
                "DOC": documents,
                **{f"C{i}": text for i, text in enumerate(texts)},
            }
        )

    def _staged(self, binding: TableBinding) -> tuple[str, tuple[str, ...]]:
        """The relation of ``binding``'s staged rows (OP, DOC, C0...) and the values it binds."""
        if binding.index not in self.inline:
            return f"(SELECT * FROM {self.staging} WHERE BINDING = {binding.index})", ()
        picked = ", ".join(
            f"f.value[{i}]::VARCHAR AS {name}"
            for i, name in enumerate(["OP", "DOC", *(f"C{i}" for i in range(len(binding.columns)))])
        )
        return f"(SELECT {picked} FROM TABLE(FLATTEN(input => PARSE_JSON(?))) f)", (self.inline[binding.index],)

    def _apply(self, cursor: Any, binding: TableBinding, load: Load, published_at: str) -> None:
        target = ident(binding.table)
        if load.replace or (load.truncated and self.hard_delete):
            cursor.execute(f"DELETE FROM {target}")
        elif load.truncated:
            cursor.execute(f"UPDATE {target} SET {ident(META_OP)} = ?", ("d",))
        if not load.rows:
            return
        if binding.index in self.backfill_files:
            self._copy_backfill(cursor, binding, load.rows, published_at)
            return
        staging, bound = self._staged(binding)
        if not binding.delta and not load.replace:
            keys = binding.key_positions()
            matches = " AND ".join(f"{target}.{ident(k.name)} = s.K{i}" for i, k in keys)
            picked = ", ".join(f"{k.cast(f'C{i}')} AS K{i}" for i, k in keys)
            cursor.execute(f"DELETE FROM {target} USING (SELECT {picked} FROM {staging} x) s WHERE {matches}", bound)
        keep = "" if binding.delta or not self.hard_delete else " WHERE OP <> 'd'"
        names = ", ".join(ident(name) for name in (*(c.name for c in binding.columns), META_OP, PUBLISHED_AT, DOCUMENT))
        values = ", ".join(c.cast(f"C{i}") for i, c in enumerate(binding.columns))
        cursor.execute(
            f"INSERT INTO {target} ({names}) SELECT {values}, OP, CAST(? AS TIMESTAMP_TZ), DOC::VARIANT FROM {staging} x{keep}",
            (published_at, *bound),
        )

    def _copy_backfill(self, cursor: Any, binding: TableBinding, rows: int, published_at: str) -> None:
        """Load the binding's backfill files into its (emptied) table, converting each column and completing each
        document with its ``_meta`` on the way."""
        location, meta = self.backfill_files[binding.index]
        names = [ident(name) for name in (*(c.name for c in binding.columns), META_OP, PUBLISHED_AT, DOCUMENT)]
        rest = _literal('"_meta":' + meta + "}")
        document = (
            "(CASE WHEN $1:DOC = '{}' THEN '{' ELSE SUBSTR($1:DOC, 1, LENGTH($1:DOC) - 1) || ',' END"
            f" || {rest})::VARIANT"
        )
        select = [
            *(c.cast(f"$1:C{i}") for i, c in enumerate(binding.columns)),
            "'c'",
            f"CAST({_literal(published_at)} AS TIMESTAMP_TZ)",
            document,
        ]
        copy_staged(cursor, ident(binding.table), location, rows, names, select)

    def _write_checkpoints(self, cursor: Any, checkpoints: Mapping[str, int]) -> None:
        """Move the checkpoints: one UPDATE when every row exists (each streamed commit), else replace the rows."""
        if not checkpoints:
            return
        in_list = ", ".join(["?"] * len(checkpoints))
        if self.stored_checkpoints.issuperset(checkpoints):
            cases = " ".join(["WHEN ? THEN ?"] * len(checkpoints))
            cursor.execute(
                f"UPDATE {CHECKPOINTS} SET lsn = CASE binding {cases} END, updated_at = CURRENT_TIMESTAMP() "
                f"WHERE materialization = ? AND binding IN ({in_list})",
                (*(v for item in checkpoints.items() for v in item), self.name, *checkpoints),
            )
            return
        cursor.execute(
            f"DELETE FROM {CHECKPOINTS} WHERE materialization = ? AND binding IN ({in_list})",
            (self.name, *checkpoints),
        )
        rows = ", ".join(["(?, ?, ?, CURRENT_TIMESTAMP())"] * len(checkpoints))
        params = [value for table, lsn in checkpoints.items() for value in (self.name, table, lsn)]
        cursor.execute(f"INSERT INTO {CHECKPOINTS} (materialization, binding, lsn, updated_at) VALUES {rows}", params)

    def existing_documents(self, cursor: Any, binding: TableBinding, keys: list[tuple]) -> dict[tuple, dict[str, Any]]:
        """The stored documents of ``keys``, numbers exact (used to keep unchanged TOAST values of updates)."""
        found: dict[tuple, dict[str, Any]] = {}
        key_columns = [c for _, c in binding.key_positions()]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            condition = " OR ".join(
                "(" + " AND ".join(f"{ident(c.name)} = {c.cast('?')}" for c in key_columns) + ")" for _ in chunk
            )
            cursor.execute(
                f"SELECT {ident(DOCUMENT)}::VARCHAR FROM {ident(binding.table)} WHERE {condition}",
                [column_text(value) for key in chunk for value in key],
            )
            for (text,) in cursor.fetchall():
                doc = decode(text)
                found[tuple(doc.get(k) for k in binding.key)] = doc
        return found


def _literal(text: str) -> str:
    """``text`` as a Snowflake string literal (a COPY's transformation takes no bound values)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _rows_by_binding(table: pa.Table) -> dict[int, list[list[str | None]]]:
    """Each binding's staged rows as ``[op, doc, c0, ...]`` lists of strings (strings survive JSON exactly)."""
    texts = [name for name in table.column_names if name not in ("BINDING", "OP", "DOC")]
    rows: dict[int, list[list[str | None]]] = {}
    for row in table.to_pylist():
        rows.setdefault(row["BINDING"], []).append([row["OP"], row["DOC"], *(row[name] for name in texts)])
    return rows


def data_plane_connection(snowflake: SnowflakeResource) -> Any:
    """A connection of ``snowflake`` whose statements bind ``?`` placeholders on the server (Snowflake's qmark
    style): a batch's documents travel as bound values, not as SQL text the server must parse first.

    Example:
        ``with data_plane_connection(resource) as conn: Materializer(...).setup(conn.cursor())``
    """
    fields = {name: getattr(snowflake, name) for name in snowflake.model_fields_set}
    extra = {**(snowflake.additional_snowflake_connection_args or {}), "paramstyle": "qmark"}
    return type(snowflake)(**{**fields, "additional_snowflake_connection_args": extra}).get_connection()

"""The warehouse side of the embedded data plane: Estuary's materialize-snowflake semantics over any
Snowflake connection (the embedded warehouse locally).

Each commit bulk-loads the batch's documents into a staging table (Parquet -> PUT -> COPY INTO), then in ONE
transaction merges them into the target tables and moves the checkpoint (the source LSN reached per
binding), so a crash at any point leaves either both or neither.

- standard bindings keep one row per collection key: the batch's last document per key replaces the row;
  a delete removes it when ``hardDelete`` is on, otherwise the row stays with ``_meta/op = 'd'``;
- ``delta_updates`` bindings append every document;
- every table has the collection's columns plus ``_meta/op``, ``flow_published_at`` and ``flow_document``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from sophia_dagster.warehouse.bulk import load_arrow

CHECKPOINTS = "FLOW_CHECKPOINTS_V1"
META_OP = "_meta/op"
SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENCODE = json.JSONEncoder(separators=(",", ":")).encode
STAGING_SCHEMA = pa.schema([("binding", pa.int32()), ("op", pa.string()), ("doc", pa.string())])


def quote(name: str) -> str:
    """A Snowflake identifier: plain names stay case-insensitive, others are quoted."""
    return name if SIMPLE.match(name) else '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Column:
    """A materialized document field and its warehouse type."""

    name: str
    type: str

    def extract(self, document: str = "d") -> str:
        """SQL taking this field out of a parsed document."""
        value = f"{document}:{quote(self.name)}"
        return f"STRIP_NULL_VALUE({value})" if self.type == "VARIANT" else f"{value}::{self.type}"


@dataclass(frozen=True)
class TableBinding:
    """One materialization binding: a collection written into a warehouse table."""

    index: int
    table: str
    collection: str
    key: tuple[str, ...]
    delta: bool
    columns: tuple[Column, ...]

    def key_columns(self) -> tuple[Column, ...]:
        by_name = {c.name: c for c in self.columns}
        return tuple(by_name[k] for k in self.key)


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
        self.staged_bytes: Counter = Counter()

    # setup -----------------------------------------------------------------------------------------------
    def setup(self, cursor: Any) -> None:
        """Create the checkpoint and staging tables."""
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (materialization VARCHAR, binding VARCHAR, "
            "lsn NUMBER(38,0), updated_at TIMESTAMP_TZ)"
        )
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {self.staging} (binding INT, op VARCHAR, doc VARCHAR)")

    def ensure_table(self, cursor: Any, binding: TableBinding) -> list[str]:
        """Create ``binding``'s table or add the columns it lacks; returns the added column names."""
        columns = [
            *binding.columns,
            Column(META_OP, "VARCHAR"),
            Column("flow_published_at", "TIMESTAMP_TZ"),
            Column("flow_document", "VARIANT"),
        ]
        existing = self.table_columns(cursor, binding.table)
        if not existing:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {quote(binding.table)} ("
                + ", ".join(f"{quote(c.name)} {c.type}" for c in columns)
                + ")"
            )
            return []
        added = [c for c in columns if c.name.upper() not in existing]
        for column in added:
            cursor.execute(f"ALTER TABLE {quote(binding.table)} ADD COLUMN {quote(column.name)} {column.type}")
        return [c.name for c in added]

    @staticmethod
    def table_columns(cursor: Any, table: str) -> set[str]:
        """Upper-cased column names of ``table`` in the current schema (empty when it does not exist)."""
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = CURRENT_SCHEMA() "
            "AND table_name = %s",
            (table.upper() if SIMPLE.match(table) else table,),
        )
        return {row[0].upper() for row in cursor.fetchall()}

    # checkpoints -----------------------------------------------------------------------------------------
    def checkpoints(self, cursor: Any) -> dict[str, int]:
        """The committed source LSN per binding table."""
        cursor.execute(f"SELECT binding, lsn FROM {CHECKPOINTS} WHERE materialization = %s", (self.name,))
        return {table: int(lsn) for table, lsn in cursor.fetchall()}

    def reset(self, cursor: Any) -> None:
        """Forget every checkpoint of this materialization (the next run backfills again)."""
        cursor.execute(f"DELETE FROM {CHECKPOINTS} WHERE materialization = %s", (self.name,))

    # commits ---------------------------------------------------------------------------------------------
    def clear_staging(self, cursor: Any) -> None:
        """Empty the staging table (left-overs of an interrupted commit are never applied)."""
        cursor.execute(f"TRUNCATE TABLE {self.staging}")
        self.staged_bytes.clear()

    def commit(self, cursor: Any, loads: Mapping[int, Load], checkpoints: Mapping[str, int], published_at: str) -> None:
        """Merge what is staged into the targets and move ``checkpoints``, in one transaction."""
        cursor.execute("BEGIN")
        try:
            for index, load in loads.items():
                self._apply(cursor, self.bindings[index], load, published_at)
            self._write_checkpoints(cursor, checkpoints)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise

    def stage(self, cursor: Any, index: int, documents: list[dict[str, Any]]) -> int:
        """Bulk-load one binding's documents into the staging table; returns the rows loaded."""
        return self.stage_json(
            cursor,
            index,
            pa.array([ENCODE(doc) for doc in documents], pa.string()),
            pa.array([doc["_meta"]["op"] for doc in documents], pa.string()),
        )

    def stage_json(self, cursor: Any, index: int, documents: pa.Array, ops: pa.Array | None = None) -> int:
        """Bulk-load documents already encoded as JSON (all creates unless ``ops`` says otherwise)."""
        rows = len(documents)
        table = pa.Table.from_arrays(
            [
                pa.array([index] * rows, pa.int32()),
                ops if ops is not None else pa.array(["c"] * rows, pa.string()),
                documents,
            ],
            schema=STAGING_SCHEMA,
        )
        self.staged_bytes[index] += documents.nbytes
        return load_arrow(cursor, table, self.staging, create=False)

    def _apply(self, cursor: Any, binding: TableBinding, load: Load, published_at: str) -> None:
        target = quote(binding.table)
        if load.replace or (load.truncated and self.hard_delete):
            cursor.execute(f"DELETE FROM {target}")
        elif load.truncated:
            cursor.execute(f"UPDATE {target} SET {quote(META_OP)} = %s", ("d",))
        staged = f"(SELECT PARSE_JSON(doc) AS d, op FROM {self.staging} WHERE binding = {binding.index})"
        if not binding.delta and not load.replace and load.rows:
            keys = binding.key_columns()
            matches = " AND ".join(f"{target}.{quote(k.name)} = s.{quote(k.name)}" for k in keys)
            picked = ", ".join(f"{k.extract()} AS {quote(k.name)}" for k in keys)
            cursor.execute(f"DELETE FROM {target} USING (SELECT {picked} FROM {staged} x) s WHERE {matches}")
        if not load.rows:
            return
        keep = "" if binding.delta or not self.hard_delete else " WHERE op <> 'd'"
        names = ", ".join(quote(c.name) for c in binding.columns)
        values = ", ".join(c.extract() for c in binding.columns)
        cursor.execute(
            f"INSERT INTO {target} ({names}, {quote(META_OP)}, flow_published_at, flow_document) "
            f"SELECT {values}, op, %s::TIMESTAMP_TZ, d FROM {staged} x{keep}",
            (published_at,),
        )

    def _write_checkpoints(self, cursor: Any, checkpoints: Mapping[str, int]) -> None:
        if not checkpoints:
            return
        cursor.execute(
            f"DELETE FROM {CHECKPOINTS} WHERE materialization = %s AND binding IN ("
            + ", ".join(["%s"] * len(checkpoints))
            + ")",
            (self.name, *checkpoints),
        )
        rows = ", ".join(["(%s, %s, %s, CURRENT_TIMESTAMP())"] * len(checkpoints))
        params = [value for table, lsn in checkpoints.items() for value in (self.name, table, lsn)]
        cursor.execute(f"INSERT INTO {CHECKPOINTS} (materialization, binding, lsn, updated_at) VALUES {rows}", params)

    def existing_documents(self, cursor: Any, binding: TableBinding, keys: list[tuple]) -> dict[tuple, dict[str, Any]]:
        """The stored documents of ``keys`` (used to keep unchanged TOAST values of updates)."""
        found: dict[tuple, dict[str, Any]] = {}
        key_columns = binding.key_columns()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            condition = " OR ".join(
                "(" + " AND ".join(f"{quote(c.name)} = %s" for c in key_columns) + ")" for _ in chunk
            )
            cursor.execute(
                f"SELECT flow_document FROM {quote(binding.table)} WHERE {condition}",
                [value for key in chunk for value in key],
            )
            for (text,) in cursor.fetchall():
                doc = json.loads(text)
                found[tuple(doc.get(k) for k in binding.key)] = doc
        return found

"""The source side of the embedded data plane: PostgreSQL CDC through a ``pgoutput`` replication slot.

It keeps Estuary's source-postgres contract: a publication and a logical slot named in the capture's
``advanced`` config, a backfill read from a snapshot that is exactly consistent with a point of the
change stream, and documents carrying ``_meta`` (op, source.schema/table/loc/txid/ts_ms/snapshot, before).

Nothing here advances the slot on its own: callers advance it only after the warehouse committed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql
from psycopg.conninfo import make_conninfo

from sophia_dagster.dataplane import pgoutput
from sophia_dagster.dataplane.errors import CaptureError
from sophia_dagster.dataplane.snapshot_sql import documents_sql, text_sql
from sophia_dagster.dataplane.values import Converter, PgType, column_text, converter, encode, resolve_types

SESSION_SETUP = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3"
BACKFILL_LOC = [-1, 0, 0]
Chunk = tuple[pa.Array, dict[str, pa.Array]]
"""Backfilled rows: their JSON documents without ``_meta`` (see :func:`backfill_meta`), and each column's values as
the text warehouse columns load from."""


@dataclass(frozen=True)
class SourceTable:
    """A bound source table and the collection it feeds."""

    namespace: str
    name: str
    collection: str
    key: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass
class Change:
    """One captured document for a source table; ``unchanged`` lists TOASTed fields the update kept."""

    table: str
    document: dict[str, Any]
    unchanged: frozenset[str] = frozenset()
    truncate: bool = False
    toast_key: tuple | None = None
    """The row's key before this change, when a key update moved it (unchanged values are found there)."""


@dataclass
class Transaction:
    """The changes of one committed source transaction, in order."""

    xid: int
    final_lsn: int
    end_lsn: int
    commit_time: datetime
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True)
class _Shape:
    """A relation as last described by pgoutput, with its value converters."""

    relation: pgoutput.Relation
    converters: tuple[Converter, ...]


def _meta(
    op: str, table: SourceTable, ts: datetime, loc: list[int], snapshot: bool, txid: int | None
) -> dict[str, Any]:
    source: dict[str, Any] = {
        "ts_ms": int(ts.timestamp() * 1000),
        "schema": table.namespace,
        "table": table.name,
        "snapshot": snapshot,
        "loc": loc,
    }
    if txid is not None:
        source["txid"] = txid
    return {"op": op, "source": source}


def backfill_meta(table: SourceTable) -> dict[str, Any]:
    """The ``_meta`` of every document of a backfill of ``table`` starting now (chunks leave it out)."""
    return _meta("c", table, datetime.now(UTC), BACKFILL_LOC, True, None)


def _read_csv(data: bytearray, names: list[str]) -> pa.Table:
    """COPY's CSV rows as string columns: an unquoted empty field is NULL, a quoted one an empty string."""
    return pacsv.read_csv(
        pa.py_buffer(bytes(data)),
        read_options=pacsv.ReadOptions(column_names=names, block_size=max(1 << 20, len(data) + 1)),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    )


def _chunk(data: bytearray, names: list[str], csv_names: list[str]) -> Chunk:
    """Documents and column texts of rows whose documents PostgreSQL built."""
    table = _read_csv(data, csv_names)
    return table.column("doc").combine_chunks(), {
        name: table.column(i + 1).combine_chunks() for i, name in enumerate(names)
    }


def _converted(data: bytearray, names: list[str], csv_names: list[str], convert: tuple[Converter, ...]) -> Chunk:
    """Documents and column texts of rows read as text output, by the streaming path's converters."""
    table = _read_csv(data, csv_names)
    documents, values = [], {name: [] for name in names}
    for row in zip(*(table.column(i).to_pylist() for i in range(len(names))), strict=True):
        document = {}
        for name, to_json, text in zip(names, convert, row, strict=True):
            document[name] = None if text is None else to_json(text)
            values[name].append(column_text(document[name]))
        documents.append(encode(document))
    return pa.array(documents, pa.string()), {name: pa.array(v, pa.string()) for name, v in values.items()}


def _row(
    columns: tuple[pgoutput.Column, ...], convert: tuple[Converter, ...], values: tuple, keys_only: bool = False
) -> tuple[dict[str, Any], frozenset[str]]:
    """Document fields of one tuple, and the names of unchanged TOAST values left out of it."""
    row: dict[str, Any] = {}
    unchanged: set[str] = set()
    for column, to_json, value in zip(columns, convert, values, strict=True):
        if keys_only and not column.is_key:
            continue
        if value is pgoutput.UNCHANGED_TOAST:
            unchanged.add(column.name)
        else:
            row[column.name] = None if value is None else to_json(value)
    return row, frozenset(unchanged)


class PostgresCapture:
    """Publication, slot, snapshot backfill and change reading for one ``source-postgres`` capture."""

    def __init__(self, dsn: str, publication: str, slot: str, tables: list[SourceTable]) -> None:
        self.dsn = dsn
        self.publication = publication
        self.slot = slot
        self.tables = {table.qualified: table for table in tables}
        self._shapes: dict[int, _Shape] = {}
        self._types: dict[int, PgType] = {}
        self._conn: psycopg.Connection | None = None

    # connections -----------------------------------------------------------------------------------------
    def connect(self, **kwargs: Any) -> psycopg.Connection:
        """A new session configured for text values the converters expect."""
        conn = psycopg.connect(self.dsn, autocommit=True, **kwargs)
        try:
            conn.execute(SESSION_SETUP)
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def conn(self) -> psycopg.Connection:
        """The long-lived session used for slot reads and small queries."""
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # publish-time checks and setup ---------------------------------------------------------------------
    def validate(self, standard: frozenset[str] = frozenset()) -> None:
        """Refuse tables that do not exist, whose updates and deletes could not be keyed, or (for the tables in
        ``standard``, materialized one row per key) whose rows the collection key does not tell apart."""
        problems = []
        for table in self.tables.values():
            row = self.conn.execute(
                "SELECT c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),"
                " ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped),"
                " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indpred IS NULL"
                "  AND i.indexprs IS NULL AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) k JOIN pg_attribute a"
                "  ON a.attrelid = c.oid AND a.attnum = k WHERE NOT a.attnotnull OR a.attname <> ALL(%s)))"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
                (list(table.key), table.namespace, table.name),
            ).fetchone()
            if row is None:
                problems.append(f"table {table.qualified} (collection {table.collection}) does not exist in the source")
            elif missing := [k for k in table.key if k not in row[2]]:
                problems.append(
                    f"collection {table.collection} is keyed on {missing}, which table {table.qualified} lacks"
                )
            elif not row[1] and row[0] != "f":
                problems.append(
                    f"table {table.qualified} has no primary key and its REPLICA IDENTITY is not FULL: updates and "
                    f"deletes could not be matched to rows; add a primary key or run "
                    f"ALTER TABLE {table.qualified} REPLICA IDENTITY FULL"
                )
            elif table.qualified in standard and not row[3]:
                problems.append(
                    f"table {table.qualified} has no primary key or unique index on NOT NULL columns {list(table.key)} "
                    f"(the key of collection {table.collection}): rows with equal keys would collapse into one row "
                    f"of the warehouse table; add such a key or materialize the collection with delta_updates: true"
                )
        if problems:
            raise CaptureError("cannot capture: " + "; ".join(problems))

    def ensure_publication(self) -> None:
        """Create the publication, or add the bound tables it lacks (changes to a table stream from then on)."""
        ident = sql.Identifier(self.publication)
        names = [sql.Identifier(t.namespace, t.name) for t in self.tables.values()]
        exists = self.conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (self.publication,)).fetchone()
        if not exists:
            self.conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(ident, sql.SQL(", ").join(names)))
            return
        published = {
            f"{schema}.{name}"
            for schema, name in self.conn.execute(
                "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s", (self.publication,)
            )
        }
        missing = [sql.Identifier(t.namespace, t.name) for t in self.tables.values() if t.qualified not in published]
        if missing:
            self.conn.execute(sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(ident, sql.SQL(", ").join(missing)))

    def slot_position(self) -> int | None:
        """The slot's confirmed position, or None when the slot does not exist."""
        row = self.conn.execute(
            "SELECT confirmed_flush_lsn::text, plugin FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
        ).fetchone()
        if row is None:
            return None
        if row[1] != "pgoutput":
            raise CaptureError(f"replication slot {self.slot!r} uses plugin {row[1]!r}, not pgoutput")
        return pgoutput.lsn_to_int(row[0])

    def create_slot(self) -> int:
        """Create the capture's logical slot; returns its start position."""
        row = self.conn.execute(
            "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'pgoutput')", (self.slot,)
        ).fetchone()
        return pgoutput.lsn_to_int(row[0])

    def drop_slot(self) -> None:
        """Drop the capture's slot if it exists (used by a reset)."""
        self.conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
        )

    def current_lsn(self) -> int:
        """The source's current WAL insert position."""
        return pgoutput.lsn_to_int(self.conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])

    def advance(self, lsn: int) -> None:
        """Move the slot forward: transactions committed before ``lsn`` will not be read again."""
        self.conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.slot, pgoutput.lsn_to_str(lsn)))

    # backfill ----------------------------------------------------------------------------------------------
    @contextmanager
    def snapshot(self) -> Iterator[tuple[int, psycopg.Connection]]:
        """A read-only session seeing the source exactly as of a stream position.

        A temporary slot exports its snapshot: every transaction committed before the returned position is in
        the snapshot, every later one comes from the capture's slot (which started no later).
        """
        replication = psycopg.connect(make_conninfo(self.dsn, replication="database"), autocommit=True)
        try:
            name = f"flow_snapshot_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            result = replication.pgconn.exec_(
                f"CREATE_REPLICATION_SLOT {name} TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')".encode()
            )
            if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
                raise CaptureError(f"cannot create a snapshot slot: {result.error_message.decode(errors='replace')}")
            lsn, snapshot_name = pgoutput.lsn_to_int(result.get_value(0, 1).decode()), result.get_value(0, 2).decode()
            with psycopg.connect(self.dsn) as conn:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_name)))
                conn.execute(SESSION_SETUP)
                yield lsn, conn
        finally:
            replication.close()

    def backfill(self, conn: psycopg.Connection, table: SourceTable, chunk_bytes: int = 64 << 20) -> Iterator[Chunk]:
        """Every row of ``table`` in ``conn``'s snapshot, in chunks of documents (without ``_meta``) and column
        texts."""
        rows = conn.execute(
            "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            (sql.Identifier(table.namespace, table.name).as_string(conn),),
        ).fetchall()
        types = resolve_types(conn, [oid for _, oid in rows])
        columns = [(name, types[oid]) for name, oid in rows]
        names = [name for name, _ in columns]
        source = sql.Identifier(table.namespace, table.name)
        query = documents_sql(source, columns)
        built_in_sql = query is not None
        positions = [f"c{i}" for i in range(len(columns))]
        if built_in_sql:
            copy_sql = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv)").format(query)
            read = partial(_chunk, names=names, csv_names=["doc", *positions])
        else:
            copy_sql = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv)").format(text_sql(source, columns))
            convert = tuple(converter(pg_type) for _, pg_type in columns)
            read = partial(_converted, names=names, csv_names=positions, convert=convert)
        buffer = bytearray()
        with conn.cursor().copy(copy_sql) as copy:
            for data in copy:
                buffer += data
                if len(buffer) >= chunk_bytes:
                    yield read(buffer)
                    buffer = bytearray()
        if buffer:
            yield read(buffer)

    # streaming ---------------------------------------------------------------------------------------------
    def read(self, upto_lsn: int | None, max_messages: int, after_lsn: int) -> list[Transaction]:
        """Decode the committed transactions after the slot's position (none committed at or after ``upto_lsn``).

        ``after_lsn`` is the end of the last commit already handled (for ``_meta.source.loc``).
        """
        try:
            rows = self.conn.execute(
                "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, %s,"
                " 'proto_version', '1', 'publication_names', %s)",
                (
                    self.slot,
                    None if upto_lsn is None else pgoutput.lsn_to_str(upto_lsn),
                    max_messages,
                    self.publication,
                ),
            ).fetchall()
        except psycopg.errors.UndefinedObject as exc:
            raise CaptureError(f"cannot read replication slot {self.slot!r}: {exc}") from exc
        transactions: list[Transaction] = []
        last_end = after_lsn
        current: Transaction | None = None
        for lsn_text, data in rows:
            message = pgoutput.decode(data)
            if isinstance(message, pgoutput.Begin):
                current = Transaction(message.xid, message.final_lsn, 0, message.commit_time)
            elif isinstance(message, pgoutput.Commit):
                current.end_lsn = message.end_lsn
                transactions.append(current)
                last_end, current = message.end_lsn, None
            elif isinstance(message, pgoutput.Relation):
                self._remember(message)
            elif current is not None:
                loc = [last_end, pgoutput.lsn_to_int(lsn_text), current.final_lsn]
                current.changes.extend(self._changes(message, current, loc))
        return transactions

    def shape(self, table: str) -> pgoutput.Relation | None:
        """The latest pgoutput description of ``table`` seen in this session."""
        for shape in self._shapes.values():
            if f"{shape.relation.namespace}.{shape.relation.name}" == table:
                return shape.relation
        return None

    def _remember(self, relation: pgoutput.Relation) -> None:
        unknown = [c.type_oid for c in relation.columns if c.type_oid not in self._types]
        if unknown:
            self._types.update(resolve_types(self.conn, unknown))
        convert = tuple(converter(self._types[c.type_oid]) for c in relation.columns)
        self._shapes[relation.relation_id] = _Shape(relation, convert)

    def _changes(self, message: pgoutput.Message, txn: Transaction, loc: list[int]) -> list[Change]:
        if isinstance(message, pgoutput.Truncate):
            return [
                Change(name, {}, truncate=True)
                for name in (self._table_of(rid) for rid in message.relation_ids)
                if name in self.tables
            ]
        if not isinstance(message, pgoutput.Insert | pgoutput.Update | pgoutput.Delete):
            return []
        shape = self._shapes[message.relation_id]
        name = self._table_of(message.relation_id)
        table = self.tables.get(name)
        if table is None:
            return []
        cols, convert = shape.relation.columns, shape.converters

        def document(op: str, values: tuple, keys_only: bool = False, before: dict | None = None) -> Change:
            row, unchanged = _row(cols, convert, values, keys_only)
            row["_meta"] = _meta(op, table, txn.commit_time, loc, False, txn.xid)
            if before is not None:
                row["_meta"]["before"] = before
            return Change(name, row, unchanged)

        if isinstance(message, pgoutput.Insert):
            return [document("c", message.new)]
        if isinstance(message, pgoutput.Delete):
            return [document("d", message.old, keys_only=message.old_kind == "K")]
        if message.old is None:
            return [document("u", message.new)]
        new_values = message.new
        if message.old_kind == "O":
            new_values = tuple(
                old if new is pgoutput.UNCHANGED_TOAST else new
                for old, new in zip(message.old, new_values, strict=True)
            )
        before, _ = _row(cols, convert, message.old, keys_only=message.old_kind == "K")
        new_row, _ = _row(cols, convert, new_values)
        if any(new_row.get(k) != before.get(k) for k in table.key if k in before):
            created = document("c", new_values)
            created.toast_key = tuple(before.get(k) for k in table.key)
            return [document("d", message.old, keys_only=message.old_kind == "K"), created]
        return [document("u", new_values, before=before)]

    def _table_of(self, relation_id: int) -> str:
        relation = self._shapes[relation_id].relation
        return f"{relation.namespace}.{relation.name}"

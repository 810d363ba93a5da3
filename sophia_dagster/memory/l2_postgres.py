"""L2: asset values as JSON documents in PostgreSQL tables, written with COPY, partitions replaced.

`<schema>.outputs` has one row per asset partition (kind, Arrow schema for tables, row count, version);
`<schema>.documents` one jsonb row per document: each element of a list, each row of a table, or the
whole value for a dict or scalar. A write replaces the partition's rows in one transaction; its upsert of
the `outputs` row comes first and locks it, so concurrent writers of one partition take turns. (No
unique index on the documents: checking one against the rows being replaced made COPY twice as slow.)
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from sophia_dagster.memory import codec
from sophia_dagster.memory.errors import MissingValueError
from sophia_dagster.memory.postgres import PostgresTier
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.memory.store import Stored, TierIOManager, TierStore

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.outputs (asset_key text NOT NULL, partition_key text NOT NULL, "
    "kind text NOT NULL, arrow_schema bytea, rows bigint NOT NULL, version text NOT NULL, "
    "written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (asset_key, partition_key))",
    "CREATE TABLE IF NOT EXISTS {schema}.documents (asset_key text NOT NULL, partition_key text NOT NULL, "
    "position bigint NOT NULL, doc jsonb NOT NULL)",
    "CREATE INDEX IF NOT EXISTS documents_output ON {schema}.documents (asset_key, partition_key)",
)


def _documents(kind: str, value: Any) -> tuple[str, bytes | None, list[Any]]:
    """(stored kind, Arrow schema bytes or None, documents) for a value."""
    if kind in codec.TABLE_KINDS:
        table = codec.to_arrow(value)
        return kind, codec.schema_bytes(table.schema), table.to_pylist()
    if isinstance(value, list):
        return "json-list", None, value
    return "json", None, [value]


def _value(kind: str, schema: bytes | None, docs: list[Any]) -> Any:
    """The value `_documents` split into documents."""
    if kind in codec.TABLE_KINDS:
        arrow_schema = codec.schema_from_bytes(schema)
        columns = pa.Table.from_pylist(docs) if docs else arrow_schema.empty_table()
        return codec.from_arrow(codec.conform(columns, arrow_schema), kind)
    return docs if kind == "json-list" else docs[0]


class DocumentStore(PostgresTier, TierStore):
    """L2 storage: JSON documents in PostgreSQL (the source database, schema `sophia_memory` by default)."""

    DDL = DDL
    TIER = "L2 postgres"

    def write(self, ref: OutputRef, value: Any, version: str) -> dict[str, Any]:
        """Replace the partition's documents with the value's, in one transaction, via COPY."""
        kind, schema, docs = _documents(codec.kind_of(value), value)
        lines = [codec.dumps_json(doc) for doc in docs]
        key = (ref.name, ref.partition_label)
        with self.connection() as conn:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    f"INSERT INTO {self.schema_name}.outputs (asset_key, partition_key, kind, arrow_schema, rows, version)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (asset_key, partition_key) DO UPDATE SET"
                    " kind = excluded.kind, arrow_schema = excluded.arrow_schema, rows = excluded.rows,"
                    " version = excluded.version, written_at = now()",
                    (*key, kind, schema, len(docs), version),
                )
                cur.execute(
                    f"DELETE FROM {self.schema_name}.documents WHERE asset_key = %s AND partition_key = %s", key
                )
                copy_sql = f"COPY {self.schema_name}.documents (asset_key, partition_key, position, doc) FROM STDIN"
                with cur.copy(copy_sql) as copy:
                    for position, line in enumerate(lines):
                        copy.write_row((*key, position, line))
        return {"memory/documents": len(docs), "memory/kind": kind}

    def read(self, ref: OutputRef) -> Stored:
        """The partition's documents reassembled into the value that was written."""
        key = (ref.name, ref.partition_label)
        with self.connection() as conn:
            head = conn.execute(
                f"SELECT kind, arrow_schema, version FROM {self.schema_name}.outputs"
                " WHERE asset_key = %s AND partition_key = %s",
                key,
            ).fetchone()
            if head is None:
                raise MissingValueError(f"{self.tier} holds no value for {ref}")
            docs = [
                json.loads(line)
                for (line,) in conn.execute(
                    f"SELECT doc::text FROM {self.schema_name}.documents"
                    " WHERE asset_key = %s AND partition_key = %s ORDER BY position",
                    key,
                )
            ]
        kind, schema, version = head
        return Stored(_value(kind, schema, docs), version)


class PostgresIOManager(TierIOManager):
    """L2 IO manager: asset values as JSON documents in PostgreSQL, partitions overwritten, never duplicated."""

    store: DocumentStore

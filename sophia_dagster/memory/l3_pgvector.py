"""L3 locally: documents and their hashing embeddings in PostgreSQL with pgvector (HNSW, cosine)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg

from sophia_dagster.memory import codec
from sophia_dagster.memory.embedding import DIMENSIONS, embed, vector_literal
from sophia_dagster.memory.errors import MissingValueError
from sophia_dagster.memory.l3_vectors import FilterValue, Hit, KnowledgeStore, check_filters, documents
from sophia_dagster.memory.postgres import PostgresTier
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.memory.store import Stored

DDL = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE IF NOT EXISTS {schema}.knowledge (asset_key text NOT NULL, partition_key text NOT NULL, "
    "doc_id text NOT NULL, position bigint NOT NULL, content text NOT NULL, metadata jsonb NOT NULL, "
    f"version text NOT NULL, embedding vector({DIMENSIONS}) NOT NULL, "
    "PRIMARY KEY (asset_key, partition_key, doc_id))",
    "CREATE INDEX IF NOT EXISTS knowledge_embedding ON {schema}.knowledge USING hnsw (embedding vector_cosine_ops)",
    "CREATE INDEX IF NOT EXISTS knowledge_metadata ON {schema}.knowledge USING gin (metadata jsonb_path_ops)",
)
COLUMNS = "asset_key, partition_key, doc_id, position, content, metadata, version, embedding"


class PgVectorKnowledgeStore(PostgresTier, KnowledgeStore):
    """L3 storage in PostgreSQL + pgvector, embedded with the local hashing embedding."""

    DDL = DDL
    TIER = "L3 pgvector"

    def write(self, ref: OutputRef, value: Any, version: str) -> dict[str, Any]:
        """Replace the partition's documents (with fresh embeddings) in one transaction, via COPY."""
        docs = documents(value, ref)
        with self.connection() as conn, conn.transaction():
            conn.execute(
                f"DELETE FROM {self.schema_name}.knowledge WHERE asset_key = %s AND partition_key = %s",
                (ref.name, ref.partition_label),
            )
            self._copy(conn, ref, docs, version)
        return {"memory/documents": len(docs), "memory/embedding": f"feature hashing, {DIMENSIONS} dims"}

    def add(self, ref: OutputRef, docs: list[dict[str, Any]]) -> None:
        """Insert or replace single documents under `ref`."""
        docs = documents(docs, ref)
        with self.connection() as conn, conn.transaction():
            conn.execute(
                f"DELETE FROM {self.schema_name}.knowledge WHERE asset_key = %s AND partition_key = %s"
                " AND doc_id = ANY(%s)",
                (ref.name, ref.partition_label, [doc["id"] for doc in docs]),
            )
            self._copy(conn, ref, docs, "added")

    def read(self, ref: OutputRef) -> Stored:
        """The partition's documents in the order they were written."""
        with self.connection() as conn:
            rows = conn.execute(
                f"SELECT doc_id, content, metadata, version FROM {self.schema_name}.knowledge"
                " WHERE asset_key = %s AND partition_key = %s ORDER BY position",
                (ref.name, ref.partition_label),
            ).fetchall()
        if not rows:
            raise MissingValueError(f"{self.tier} holds no documents for {ref}")
        docs = [{"id": doc_id, "content": content, "metadata": metadata} for doc_id, content, metadata, _ in rows]
        return Stored(docs, rows[0][3])

    def search(self, query: str, limit: int = 5, filters: Mapping[str, FilterValue] | None = None) -> list[Hit]:
        """Nearest documents by cosine distance, restricted to those whose metadata contains `filters`."""
        vector = vector_literal(embed(query))
        with self.connection() as conn, conn.transaction():
            conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            rows = conn.execute(
                f"SELECT doc_id, content, metadata, 1 - (embedding <=> %(q)s::vector) AS score"
                f" FROM {self.schema_name}.knowledge WHERE metadata @> %(filters)s::jsonb"
                " ORDER BY embedding <=> %(q)s::vector LIMIT %(limit)s",
                {"q": vector, "filters": json.dumps(check_filters(filters)), "limit": limit},
            ).fetchall()
        hits = [Hit(doc_id, content, metadata, float(score)) for doc_id, content, metadata, score in rows]
        return sorted(hits, key=lambda hit: -hit.score)

    def _copy(self, conn: psycopg.Connection, ref: OutputRef, docs: list[dict[str, Any]], version: str) -> None:
        with conn.cursor().copy(f"COPY {self.schema_name}.knowledge ({COLUMNS}) FROM STDIN") as copy:
            for position, doc in enumerate(docs):
                copy.write_row(
                    (
                        ref.name,
                        ref.partition_label,
                        doc["id"],
                        position,
                        doc["content"],
                        codec.dumps_json(doc["metadata"]),
                        version,
                        vector_literal(embed(doc["content"])),
                    )
                )

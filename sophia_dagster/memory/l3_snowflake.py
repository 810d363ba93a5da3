"""L3 in prod: a Snowflake table with a `VECTOR(FLOAT, 768)` column filled by Cortex `EMBED_TEXT_768`.

Documents are bulk-loaded into a temporary table (PUT + COPY INTO, the warehouse write path) and
embedded by one `INSERT ... SELECT SNOWFLAKE.CORTEX.EMBED_TEXT_768(model, CONTENT)`, so embedding runs
inside Snowflake. Search ranks by `VECTOR_COSINE_SIMILARITY` against the embedded query text. The SQL is
built by the functions below so it can be checked without a connection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from dagster_snowflake import SnowflakeResource
from pydantic import Field

from sophia_dagster.memory.embedding import DIMENSIONS
from sophia_dagster.memory.errors import MissingValueError
from sophia_dagster.memory.l3_vectors import FilterValue, Hit, KnowledgeStore, check_filters, documents
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.memory.store import Stored
from sophia_dagster.warehouse.bulk import load_arrow
from sophia_dagster.warehouse.objects import MEMORY_SCHEMA

TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$"
DEFAULT_MODEL = "snowflake-arctic-embed-m-v1.5"
Statement = tuple[str, dict[str, Any]]


def create_table_sql(table: str) -> str:
    """DDL of the knowledge table."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (ASSET_KEY VARCHAR NOT NULL, PARTITION_KEY VARCHAR NOT NULL, "
        "DOC_ID VARCHAR NOT NULL, POSITION NUMBER(38,0) NOT NULL, CONTENT VARCHAR NOT NULL, METADATA VARIANT, "
        f"VERSION VARCHAR NOT NULL, EMBEDDING VECTOR(FLOAT, {DIMENSIONS}) NOT NULL, "
        "PRIMARY KEY (ASSET_KEY, PARTITION_KEY, DOC_ID))"
    )


def load_table_sql(load_table: str) -> str:
    """DDL of the temporary table documents are staged in before embedding."""
    return (
        f"CREATE OR REPLACE TEMPORARY TABLE {load_table} "
        "(DOC_ID VARCHAR, POSITION NUMBER(38,0), CONTENT VARCHAR, METADATA VARCHAR)"
    )


def replace_statements(
    table: str, load_table: str, ref: OutputRef, version: str, model: str, whole_partition: bool
) -> list[Statement]:
    """Delete the partition's documents (or only the staged ids) and insert the staged ones, embedded."""
    where = "ASSET_KEY = %(asset)s AND PARTITION_KEY = %(partition)s"
    if not whole_partition:
        where += f" AND DOC_ID IN (SELECT DOC_ID FROM {load_table})"
    params = {"asset": ref.name, "partition": ref.partition_label, "version": version, "model": model}
    insert = (
        f"INSERT INTO {table} (ASSET_KEY, PARTITION_KEY, DOC_ID, POSITION, CONTENT, METADATA, VERSION, EMBEDDING) "
        "SELECT %(asset)s, %(partition)s, DOC_ID, POSITION, CONTENT, PARSE_JSON(METADATA), %(version)s, "
        f"SNOWFLAKE.CORTEX.EMBED_TEXT_768(%(model)s, CONTENT) FROM {load_table}"
    )
    return [("BEGIN", {}), (f"DELETE FROM {table} WHERE {where}", params), (insert, params), ("COMMIT", {})]


def search_statement(
    table: str, model: str, query: str, limit: int, filters: Mapping[str, FilterValue] | None
) -> Statement:
    """The cosine-similarity search, with one equality condition per metadata filter."""
    params: dict[str, Any] = {"model": model, "query": query, "limit": int(limit)}
    conditions = []
    for index, (key, value) in enumerate(check_filters(filters).items()):
        params[f"f{index}"] = json.dumps(value)
        conditions.append(f'METADATA:"{key}" = PARSE_JSON(%(f{index})s)')
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (
        "SELECT DOC_ID, CONTENT, METADATA, VECTOR_COSINE_SIMILARITY(EMBEDDING, "
        f"SNOWFLAKE.CORTEX.EMBED_TEXT_768(%(model)s, %(query)s)) AS SCORE FROM {table}{where} "
        "ORDER BY SCORE DESC LIMIT %(limit)s"
    )
    return sql, params


def _staged(docs: list[dict[str, Any]]) -> pa.Table:
    return pa.table(
        {
            "DOC_ID": [doc["id"] for doc in docs],
            "POSITION": list(range(len(docs))),
            "CONTENT": [doc["content"] for doc in docs],
            "METADATA": [json.dumps(doc["metadata"]) for doc in docs],
        }
    )


class SnowflakeKnowledgeStore(KnowledgeStore):
    """L3 storage in Snowflake: VECTOR(FLOAT, 768) embeddings computed by Cortex in the warehouse."""

    snowflake: SnowflakeResource
    table: str = Field(
        f"{MEMORY_SCHEMA}.KNOWLEDGE", pattern=TABLE_NAME, description="Knowledge table, optionally qualified"
    )
    model: str = Field(DEFAULT_MODEL, description="Cortex EMBED_TEXT_768 model")

    @property
    def tier(self) -> str:
        return "L3 snowflake"

    def write(self, ref: OutputRef, value: Any, version: str) -> dict[str, Any]:
        """Replace the partition's documents, embedded by Cortex."""
        docs = documents(value, ref)
        self._load(ref, docs, version, whole_partition=True)
        return {"memory/documents": len(docs), "memory/embedding": f"cortex {self.model}"}

    def add(self, ref: OutputRef, docs: list[dict[str, Any]]) -> None:
        """Insert or replace single documents under `ref`."""
        self._load(ref, documents(docs, ref), "added", whole_partition=False)

    def read(self, ref: OutputRef) -> Stored:
        """The partition's documents in the order they were written."""
        with self.snowflake.get_connection() as conn:
            cursor = conn.cursor()
            cursor.execute(
                f"SELECT DOC_ID, CONTENT, METADATA, VERSION FROM {self.table} "
                "WHERE ASSET_KEY = %(asset)s AND PARTITION_KEY = %(partition)s ORDER BY POSITION",
                {"asset": ref.name, "partition": ref.partition_label},
            )
            rows = cursor.fetchall()
        if not rows:
            raise MissingValueError(f"{self.tier} holds no documents for {ref}")
        docs = [{"id": row[0], "content": row[1], "metadata": json.loads(row[2] or "{}")} for row in rows]
        return Stored(docs, rows[0][3])

    def search(self, query: str, limit: int = 5, filters: Mapping[str, FilterValue] | None = None) -> list[Hit]:
        """Nearest documents by Cortex embedding cosine similarity."""
        sql, params = search_statement(self.table, self.model, query, limit, filters)
        with self.snowflake.get_connection() as conn:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [Hit(row[0], row[1], json.loads(row[2] or "{}"), float(row[3])) for row in rows]

    def _load(self, ref: OutputRef, docs: list[dict[str, Any]], version: str, whole_partition: bool) -> None:
        load_table = f"{self.table}_LOAD"
        with self.snowflake.get_connection() as conn:
            cursor = conn.cursor()
            cursor.execute(create_table_sql(self.table))
            cursor.execute(load_table_sql(load_table))
            load_arrow(cursor, _staged(docs), load_table, create=False)
            for sql, params in replace_statements(self.table, load_table, ref, version, self.model, whole_partition):
                cursor.execute(sql, params)

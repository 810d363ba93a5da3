"""Fixtures for the warehouse layer: its own embedded PostgreSQL and warehouse, and raw CDC tables landed
from the demo source in the shape Estuary's Snowflake materialization writes them.

The landing reads the source with psycopg and bulk-loads through `load_arrow`: source columns (upper-cased
by the warehouse), ``FLOW_PUBLISHED_AT`` and ``FLOW_DOCUMENT`` (the document with ``_meta.op``). A few rows
are deleted at the source first and landed with ``_meta.op = 'd'``, as a materialization with hardDelete
off leaves them, so the tests prove the models exclude them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pyarrow as pa
import pytest
from psycopg.rows import dict_row

from sophia_dagster.embedded.demo import TABLES, generate_changes, seed_demo
from sophia_dagster.embedded.postgres import ensure_embedded_postgres
from sophia_dagster.warehouse.assets import database_objects, model_asset
from sophia_dagster.warehouse.bulk import load_arrow
from sophia_dagster.warehouse.embedded import (
    EmbeddedSnowflakeResource,
    embedded_snowflake_resource,
)
from sophia_dagster.warehouse.models import SQL_DIR, load_model

SOFT_DELETES = {"companies": 2, "contacts": 6, "deals": 7, "calls": 5, "conversations": 4}
LANDED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Landing:
    """What the fixture landed: the source DSN, the soft-deleted keys and the last publish time per table."""

    dsn: str
    deleted: dict[str, list[Any]]
    last_published: dict[str, datetime]
    objects_metadata: dict[str, Any]


@pytest.fixture(scope="session")
def warehouse_state_dir(make_state_dir: Callable[[str], Path]) -> Path:
    """A state directory of this area's own, so no other area's tables share the warehouse."""
    return make_state_dir("warehouse-state")


@pytest.fixture(scope="session")
def snowflake(warehouse_state_dir: Path) -> EmbeddedSnowflakeResource:
    """The `snowflake` resource the assets get in local."""
    return embedded_snowflake_resource(warehouse_state_dir)


def _document(row: dict[str, Any], op: str, table: str) -> str:
    document = json.loads(row.pop("flow_document"))
    document["_meta"] = {"op": op, "source": {"schema": "public", "table": table, "snapshot": op == "c"}}
    return json.dumps(document)


def _column_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def raw_arrow(
    rows: list[dict[str, Any]], ops: list[str], published: list[datetime], table: str
) -> tuple[pa.Table, set[str]]:
    """Rows (with their `to_jsonb` text) as the materialization's columns; returns the VARIANT columns too."""
    variants = {"flow_document"} | {name for name, value in rows[0].items() if isinstance(value, list | dict)}
    records = []
    for row, op, at in zip(rows, ops, published, strict=True):
        document = _document(row, op, table)
        records.append(
            {
                **{name: _column_value(value) for name, value in row.items()},
                "flow_published_at": at,
                "flow_document": document,
            }
        )
    return pa.Table.from_pylist(records), variants


def _op(row: dict[str, Any]) -> str:
    return "u" if row.get("created_at") not in (None, row["updated_at"]) else "c"


def land_table(conn: psycopg.Connection, cursor: Any, table: str, published_at: datetime) -> tuple[list[Any], datetime]:
    """Soft-delete a few source rows, then land every live row and the deleted ones into SOPHIA.RAW.<table>."""
    with conn.cursor(row_factory=dict_row) as pg:
        deleted = pg.execute(
            f"DELETE FROM {table} AS t WHERE id IN (SELECT id FROM {table} ORDER BY md5(%s || id::text) LIMIT %s) "
            "RETURNING t.*, to_jsonb(t)::text AS flow_document",
            (table, SOFT_DELETES[table]),
        ).fetchall()
        live = pg.execute(f"SELECT t.*, to_jsonb(t)::text AS flow_document FROM {table} AS t").fetchall()
    deleted_at = published_at + timedelta(minutes=1)
    rows = live + deleted
    ops = [_op(row) for row in live] + ["d"] * len(deleted)
    published = [published_at] * len(live) + [deleted_at] * len(deleted)
    deleted_ids = [row["id"] for row in deleted]
    arrow, variants = raw_arrow(rows, ops, published, table)
    load_arrow(cursor, arrow, f"SOPHIA.RAW.{table.upper()}", variant_columns=variants)
    return deleted_ids, deleted_at


@pytest.fixture(scope="session")
def landing(warehouse_state_dir: Path, snowflake: EmbeddedSnowflakeResource) -> Landing:
    """Seeded, changed and partly deleted demo source, with its raw CDC tables landed in the warehouse."""
    dsn = ensure_embedded_postgres(warehouse_state_dir)
    seed_demo(dsn)
    generate_changes(dsn, 300, seed=5)
    result = dg.materialize([database_objects], resources={"snowflake": snowflake})
    objects_metadata = result.asset_materializations_for_node(database_objects.op.name)[0].metadata
    deleted: dict[str, list[Any]] = {}
    last_published: dict[str, datetime] = {}
    with psycopg.connect(dsn) as conn, snowflake.get_connection() as sf:
        cursor = sf.cursor()
        for index, table in enumerate(TABLES):
            deleted[table], last_published[table] = land_table(conn, cursor, table, LANDED_AT + timedelta(hours=index))
    return Landing(dsn, deleted, last_published, {key: value.value for key, value in objects_metadata.items()})


def materialize_model(name: str, snowflake: EmbeddedSnowflakeResource) -> dict[str, Any]:
    """Materialize the model `name` like the UI does; returns its materialization metadata as plain values."""
    asset = model_asset(load_model(SQL_DIR / f"{name}.sql"))
    result = dg.materialize([asset], resources={"snowflake": snowflake})
    assert result.success
    [event] = result.asset_materializations_for_node(asset.op.name)
    return {key: value.value for key, value in event.metadata.items()}


def warehouse_rows(snowflake: EmbeddedSnowflakeResource, sql: str) -> list[dict[str, Any]]:
    """Rows of a warehouse query as dicts keyed by lower-case column name."""
    with snowflake.get_connection() as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        names = [column.name.lower() for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def source_rows(dsn: str, sql: str) -> list[dict[str, Any]]:
    """Rows of a source PostgreSQL query as dicts (UTC session)."""
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(sql).fetchall()

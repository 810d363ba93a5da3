"""Fixtures of the embedded data plane tests: a fresh state directory (own PostgreSQL and warehouse) per test,
a catalog written from the platform's, and a source-vs-warehouse comparison independent of the data plane."""

from __future__ import annotations

import hashlib
import json
import os
import random
import uuid
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
import yaml

from sophia_dagster.config import PLATFORM_CATALOG_DIR
from sophia_dagster.dataplane.runtime import LocalDataPlane
from sophia_dagster.embedded.demo import seed_demo
from sophia_dagster.embedded.postgres import ensure_embedded_postgres, stop_embedded_postgres
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource, stop_embedded_warehouse

DEMO_TABLES = ("companies", "contacts", "deals", "calls", "conversations")

TYPE_ZOO_SQL = """
CREATE TABLE type_zoo (
    id int PRIMARY KEY, small smallint, big bigint, exact numeric, money numeric(12, 4), ratio double precision,
    label text, flag boolean, doc jsonb, plain_json json, ident uuid, at_local timestamp, at_utc timestamptz,
    day date, ints int[], words text[], blob text
)"""


def zoo_row(key: int, rng: random.Random) -> tuple:
    """One random row of TYPE_ZOO_SQL (NULLs, odd text, a large incompressible value for TOAST)."""

    def maybe(value: object) -> object:
        return None if rng.random() < 0.15 else value

    return (
        key,
        maybe(rng.randint(-32768, 32767)),
        maybe(rng.randint(-(2**63), 2**63 - 1)),
        maybe(Decimal(f"{rng.randint(-(10**30), 10**30)}.{rng.randint(0, 10**12):012d}")),
        maybe(Decimal(rng.randint(-(10**11), 10**11)) / 10000),
        maybe(rng.uniform(-1e6, 1e6)),
        maybe(rng.choice(["plain", 'O\'Brien "quoted"', "tab\tnew\nline \\ back", "ünïcødé ✓", "{not json}", ""])),
        maybe(rng.random() < 0.5),
        maybe(json.dumps({"k": key, "nested": {"list": [1, 2.5, None, "x"], "flag": True}})),
        maybe(json.dumps([key, "plain json"])),
        maybe(uuid.UUID(int=rng.getrandbits(128))),
        maybe(datetime(2020, 1, 1) + timedelta(microseconds=rng.getrandbits(46))),
        maybe(datetime(2020, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.getrandbits(46))),
        maybe(date(1990, 1, 1) + timedelta(days=rng.randint(0, 20000))),
        maybe([rng.randint(-5, 5) if rng.random() < 0.8 else None for _ in range(rng.randint(0, 4))]),
        maybe([rng.choice(["a", "b c", 'q"uote', "NULL", "com,ma", "{br}"]) for _ in range(rng.randint(0, 3))]),
        b64encode(os.urandom(12_000)).decode() if rng.random() < 0.3 else "short",
    )


WAREHOUSE = {"warehouse_database": "SOPHIA", "warehouse_schema": "RAW"}
"""Where the data plane writes when a materialization's config names no database or schema."""


@dataclass
class Env:
    """One test's world: state dir, source DSN, catalog dir and the data plane running it."""

    state_dir: Path
    dsn: str
    catalog_dir: Path

    def plane(self, **kwargs: Any) -> LocalDataPlane:
        return LocalDataPlane(
            state_dir=str(self.state_dir), catalog_path=str(self.catalog_dir), **{**WAREHOUSE, **kwargs}
        )

    def source(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    def warehouse(self, database: str = "SOPHIA", schema: str = "RAW") -> Any:
        return embedded_snowflake_resource(self.state_dir, database, schema).get_connection()


def write_catalog(
    directory: Path,
    extra_tables: dict[str, dict] | None = None,
    hard_delete: bool = False,
    delta_tables: dict[str, str] | None = None,
    slot: str = "flow_slot",
    keys: dict[str, list[str]] | None = None,
) -> None:
    """The platform catalog, plus ``extra_tables`` ({table: collection schema}, keyed on ``/id`` unless
    ``keys`` says otherwise), ``delta_tables`` ({delta table: source table}) and the materialization's
    ``hardDelete``."""
    directory.mkdir(parents=True, exist_ok=True)
    for file in PLATFORM_CATALOG_DIR.glob("*.flow.yaml"):
        data = yaml.safe_load(file.read_text())
        for capture in data.get("captures", {}).values():
            if "advanced" in capture["endpoint"]["connector"]["config"]:
                capture["endpoint"]["connector"]["config"]["advanced"]["slotName"] = slot
                for table, schema in (extra_tables or {}).items():
                    capture["bindings"].append(
                        {"resource": {"namespace": "public", "stream": table}, "target": f"sophia/postgres-cdc/{table}"}
                    )
                    data["collections"][f"sophia/postgres-cdc/{table}"] = {
                        "key": (keys or {}).get(table, ["/id"]),
                        "schema": schema,
                    }
        for materialization in data.get("materializations", {}).values():
            materialization["endpoint"]["connector"]["config"]["hardDelete"] = hard_delete
            for table in extra_tables or {}:
                materialization["bindings"].append(
                    {"resource": {"table": table}, "source": f"sophia/postgres-cdc/{table}"}
                )
            for table, source in (delta_tables or {}).items():
                materialization["bindings"].append(
                    {"resource": {"table": table, "delta_updates": True}, "source": f"sophia/postgres-cdc/{source}"}
                )
        (directory / file.name).write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """A seeded embedded source and an empty warehouse under a fresh state dir; both stopped afterwards."""
    state_dir = tmp_path / "state"
    dsn = ensure_embedded_postgres(state_dir)
    seed_demo(dsn)
    write_catalog(tmp_path / "catalog")
    yield Env(state_dir, dsn, tmp_path / "catalog")
    stop_embedded_warehouse(state_dir)
    stop_embedded_postgres(state_dir)


def canonical(value: Any) -> Any:
    """A comparable form of a value read from either side (psycopg types or the Snowflake connector's)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date | UUID):
        return str(value)
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            return value
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def digest(rows: list[tuple]) -> tuple[int, str]:
    """Row count and a hash over every value of every row, independent of row order."""
    lines = sorted(json.dumps([canonical(v) for v in row], default=str) for row in rows)
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def source_digest(env: Env, table: str) -> tuple[int, str]:
    columns = source_columns(env, table)
    with env.source() as conn:
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
    return digest(rows)


def warehouse_digest(env: Env, table: str, columns: list[str], hard_delete: bool = False) -> tuple[int, str]:
    live = "" if hard_delete else " WHERE \"_meta/op\" <> 'd'"
    with env.warehouse() as conn:
        cursor = conn.cursor()
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table}{live}")
        return digest(cursor.fetchall())


def source_columns(env: Env, table: str) -> list[str]:
    with env.source() as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
                "ORDER BY attnum",
                (table,),
            )
        ]


def assert_tables_equal(env: Env, tables: tuple[str, ...] = DEMO_TABLES, hard_delete: bool = False) -> None:
    """Every table: the warehouse's live rows equal the source's rows, column by column."""
    for table in tables:
        expected = source_digest(env, table)
        actual = warehouse_digest(env, table, source_columns(env, table), hard_delete)
        assert actual == expected, f"{table}: warehouse {actual} != source {expected}"

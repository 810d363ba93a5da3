"""The platform catalog's PostgreSQL collections describe the demo source tables column for column."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from sophia_dagster.config import PLATFORM_CATALOG_DIR
from sophia_dagster.embedded.demo import TABLES, seed_demo
from sophia_dagster.embedded.postgres import ensure_embedded_postgres
from sophia_dagster.estuary.catalog import load_catalog


@pytest.fixture(scope="module")
def columns(embedded_state_dir: Path) -> dict[str, set[str]]:
    dsn = ensure_embedded_postgres(embedded_state_dir)
    seed_demo(dsn)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = ANY(%s)",
            (list(TABLES),),
        ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


@pytest.mark.parametrize("table", TABLES)
def test_collection_schema_lists_every_source_column(table: str, columns: dict[str, set[str]]) -> None:
    collection = load_catalog(PLATFORM_CATALOG_DIR).collections[f"sophia/postgres-cdc/{table}"]
    properties = set(collection.document_schema["properties"]) - {"_meta"}
    assert properties == columns[table]

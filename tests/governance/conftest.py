"""A demo-equivalent world for the governance tests: the embedded source seeded with the demo data,
backfilled into the embedded warehouse, a burst of live changes streamed after it (what `make demo` leaves)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sophia_dagster.config import PLATFORM_CATALOG_DIR
from sophia_dagster.dataplane.runtime import LocalDataPlane
from sophia_dagster.embedded.demo import generate_changes, seed_demo
from sophia_dagster.estuary.catalog import Catalog, load_catalog
from sophia_dagster.governance.config import GovernanceConfig
from sophia_dagster.governance.table_checks import source_query, warehouse_query
from sophia_dagster.governance.tables import GovernedTable, governed_tables
from sophia_dagster.postgres_source import SourcePostgres
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource

TASK = "sophia/postgres-cdc"


@dataclass
class World:
    """The state directory, its engines, and the governed tables."""

    state_dir: Path
    dsn: str
    plane: LocalDataPlane
    catalog: Catalog
    tables: dict[str, GovernedTable]
    config: GovernanceConfig

    def source(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    @contextmanager
    def queries(
        self,
    ) -> Iterator[tuple[Callable[[str], list[tuple[Any, ...]]], Callable[[str], list[tuple[Any, ...]]]]]:
        """``(source query, warehouse query)``."""
        with (
            source_query(SourcePostgres(dsn=self.dsn)) as source,
            warehouse_query(embedded_snowflake_resource(self.state_dir)) as warehouse,
        ):
            yield source, warehouse


@pytest.fixture(scope="package")
def world(make_state_dir: Callable[[str], Path]) -> World:
    """Seeded, backfilled, then 300 live changes streamed: the data `make demo` leaves behind."""
    state_dir = make_state_dir("governance")
    plane = LocalDataPlane(state_dir=str(state_dir))
    dsn = plane.source_dsn()
    seed_demo(dsn)
    plane.run(TASK)
    generate_changes(dsn, 300)
    plane.run(TASK)
    catalog = load_catalog(PLATFORM_CATALOG_DIR)
    tables = {t.table: t for t in governed_tables(catalog)}
    return World(state_dir, dsn, plane, catalog, tables, GovernanceConfig())

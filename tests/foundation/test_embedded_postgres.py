"""The embedded source PostgreSQL: logical decoding on, the demo schema, restarts, the change generator."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from sophia_dagster.embedded.demo import SEED_SIZES, TABLES, generate_changes, seed_demo
from sophia_dagster.embedded.postgres import ensure_embedded_postgres, stop_embedded_postgres


@pytest.fixture(scope="module")
def dsn(embedded_state_dir: Path) -> str:
    dsn = ensure_embedded_postgres(embedded_state_dir)
    seed_demo(dsn)
    return dsn


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def test_server_is_ready_for_logical_decoding_and_vectors(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SHOW wal_level").fetchone()[0] == "logical"
        assert int(conn.execute("SHOW max_replication_slots").fetchone()[0]) >= 10
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        assert conn.execute("SELECT '[1,2,3]'::vector <=> '[1,2,3]'::vector").fetchone()[0] == 0
        slot = conn.execute("SELECT lsn FROM pg_create_logical_replication_slot('probe_slot', 'pgoutput', true)")
        assert slot.fetchone()[0] is not None


def test_demo_schema_is_seeded_once_with_keys_and_varied_types(dsn: str) -> None:
    assert seed_demo(dsn) is False
    with psycopg.connect(dsn) as conn:
        keyed = conn.execute(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "WHERE i.indisprimary AND c.relname = ANY(%s)",
            (list(TABLES),),
        ).fetchone()[0]
        types = {
            row[0]
            for row in conn.execute(
                "SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ANY(%s)",
                (list(TABLES),),
            )
        }
        nulls = conn.execute("SELECT count(*) FROM deals WHERE close_date IS NULL").fetchone()[0]
        toasted = conn.execute("SELECT count(*) FROM calls WHERE pg_column_size(transcript) > 2000").fetchone()[0]
    assert keyed == len(TABLES)
    assert {
        "jsonb",
        "uuid",
        "numeric",
        "timestamp with time zone",
        "timestamp without time zone",
        "date",
        "ARRAY",
        "boolean",
        "bigint",
        "integer",
        "text",
    } <= types
    assert nulls > 0 and toasted > 0
    assert sum(_counts(dsn).values()) >= sum(SEED_SIZES.values()) * 0.9


def test_change_generator_applies_exactly_what_it_reports(dsn: str) -> None:
    before = _counts(dsn)
    counts = generate_changes(dsn, 1_000, seed=3, per_transaction=50)
    after = _counts(dsn)
    assert sum(counts.values()) == 1_000
    assert counts["inserted"] > 0 and counts["updated"] > 0 and counts["deleted"] > 0
    assert sum(after.values()) - sum(before.values()) == counts["inserted"] - counts["deleted"]


def test_server_survives_a_restart_with_its_data(dsn: str, embedded_state_dir: Path) -> None:
    before = _counts(dsn)
    stop_embedded_postgres(embedded_state_dir)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2).close()
    again = ensure_embedded_postgres(embedded_state_dir)
    assert again == dsn
    assert _counts(again) == before
    with psycopg.connect(again) as conn:
        assert conn.execute("SHOW wal_level").fetchone()[0] == "logical"

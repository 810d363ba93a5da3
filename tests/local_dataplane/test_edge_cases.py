"""Truncate, a binding added later, a column added at the source, a slot dropped behind our back, tables without
a primary key, pause/resume/status/stats, and HubSpot captures that cannot run here."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from sophia_dagster.estuary.assets import build_task_assets
from sophia_dagster.estuary.catalog import load_catalog
from sophia_dagster.estuary.local.cli import main as flow_cli
from sophia_dagster.estuary.local.resource import LocalDataPlane, LocalDataPlaneError
from sophia_dagster.estuary.local.state import FlowState
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator
from tests.local_dataplane.conftest import DEMO_TABLES, Env, assert_tables_equal, write_catalog

NOTES_SCHEMA = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}


def test_truncate_then_inserts_in_one_batch_with_hard_delete(env: Env) -> None:
    write_catalog(env.catalog_dir, hard_delete=True)
    plane = env.plane()
    plane.run("sophia/postgres-cdc")
    with env.source() as conn:
        conn.execute("TRUNCATE conversations")
        conn.execute(
            "INSERT INTO conversations (contact_id, channel, messages, created_at, updated_at) "
            "SELECT 1, 'chat', '[]'::jsonb, now(), now() FROM generate_series(1, 3)"
        )
        conn.execute("UPDATE deals SET probability = 1 WHERE id < 50")
    plane.run("sophia/postgres-cdc")
    assert_tables_equal(env, hard_delete=True)
    with env.warehouse() as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT COUNT(*) FROM conversations")
        assert cursor.fetchone()[0] == 3


def test_a_table_added_to_the_catalog_later_is_backfilled_alone(env: Env) -> None:
    plane = env.plane()
    plane.run("sophia/postgres-cdc")
    with env.source() as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 50) g")
        conn.execute("UPDATE deals SET stage = 'proposal' WHERE id < 10")
    write_catalog(env.catalog_dir, extra_tables={"notes": NOTES_SCHEMA})
    report = plane.run("sophia/postgres-cdc")
    assert report.backfilled == {"sophia/postgres-cdc/notes": 50}
    assert report.counts["sophia/postgres-cdc/deals"]["updated"] == 9
    with env.source() as conn:
        conn.execute("DELETE FROM notes WHERE id <= 5")
        conn.execute("INSERT INTO notes VALUES (51, 'late')")
    plane.run("sophia/postgres-cdc")
    assert_tables_equal(env, (*DEMO_TABLES, "notes"))


def test_a_column_added_at_the_source_reaches_the_warehouse_with_existing_values(env: Env) -> None:
    plane = env.plane()
    plane.run("sophia/postgres-cdc")
    with env.source() as conn:
        conn.execute("ALTER TABLE deals ADD COLUMN region text NOT NULL DEFAULT 'emea'")
        conn.execute("UPDATE deals SET region = 'apac' WHERE id % 7 = 0")
    report = plane.run("sophia/postgres-cdc")
    assert "sophia/postgres-cdc/deals" in report.backfilled
    assert_tables_equal(env)
    with env.warehouse() as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT region, COUNT(*) FROM deals GROUP BY region ORDER BY region")
        assert dict(cursor.fetchall()) == {"apac": 171, "emea": 1029}


def test_a_dropped_slot_stops_with_a_clear_message_and_reset_recovers(env: Env, capsys: pytest.CaptureFixture) -> None:
    plane = env.plane()
    plane.run("sophia/postgres-cdc")
    with env.source() as conn:
        conn.execute("SELECT pg_drop_replication_slot('flow_slot')")
        conn.execute("DELETE FROM calls WHERE deal_id < 100")
    with pytest.raises(
        LocalDataPlaneError, match=r"replication slot 'flow_slot' .* no longer exists.*sophia-flow reset"
    ):
        plane.run("sophia/postgres-cdc")
    assert plane.status(["sophia/postgres-cdc"])[0].status == "error"
    args = ["--state-dir", str(env.state_dir), "--catalog", str(env.catalog_dir)]
    assert flow_cli([*args, "run", "--once"]) == 1
    assert "no longer exists" in capsys.readouterr().err
    assert flow_cli([*args, "reset", "sophia/postgres-cdc"]) == 0
    assert flow_cli([*args, "run", "--once"]) == 0
    assert_tables_equal(env)
    assert plane.status(["sophia/postgres-cdc"])[0].status == "ok"


def test_a_warehouse_error_is_recorded_so_status_shows_the_failed_run(env: Env) -> None:
    plane = env.plane()
    plane.run("sophia/postgres-cdc")
    with env.warehouse() as conn:
        conn.cursor().execute("DROP TABLE deals")
        conn.cursor().execute("CREATE VIEW deals AS SELECT 1 AS unrelated")
    with env.source() as conn:
        conn.execute("UPDATE deals SET probability = 7 WHERE id <= 3")
    with pytest.raises(LocalDataPlaneError):
        plane.run("sophia/postgres-cdc")
    (status,) = plane.status(["sophia/postgres-cdc"])
    assert status.status == "error" and status.controller_failures == 1


def test_tables_without_a_primary_key_are_refused_at_publish_unless_replica_identity_full(env: Env) -> None:
    with env.source() as conn:
        conn.execute("CREATE TABLE notes (id int, body text)")
    write_catalog(env.catalog_dir, extra_tables={"notes": NOTES_SCHEMA})
    plane = env.plane()
    with pytest.raises(LocalDataPlaneError, match=r"public\.notes has no primary key.*REPLICA IDENTITY FULL"):
        plane.publish(["sophia/postgres-cdc"])
    keyed_elsewhere = {"type": "object", "properties": {"note_id": {"type": "integer"}}}
    write_catalog(env.catalog_dir, extra_tables={"notes": keyed_elsewhere}, keys={"notes": ["/note_id"]})
    with pytest.raises(LocalDataPlaneError, match=r"keyed on \['note_id'\], which table public\.notes lacks"):
        plane.publish(["sophia/postgres-cdc"])
    write_catalog(env.catalog_dir, extra_tables={"notes": NOTES_SCHEMA})
    with env.source() as conn:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0
        conn.execute("ALTER TABLE notes REPLICA IDENTITY FULL")
        conn.execute("INSERT INTO notes VALUES (1, 'a'), (2, 'b')")
    assert plane.publish(["sophia/postgres-cdc"]).status == "success"
    plane.run("sophia/postgres-cdc")
    with env.source() as conn:
        conn.execute("UPDATE notes SET body = 'changed' WHERE id = 1")
        conn.execute("DELETE FROM notes WHERE id = 2")
    plane.run("sophia/postgres-cdc")
    assert_tables_equal(env, ("notes",))


def test_pause_resume_status_and_stats(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    plane = env.plane()
    names = ["sophia/postgres-cdc", "sophia/snowflake", "sophia/hubspot"]
    assert [s.status for s in plane.status(names)] == ["warning", "warning", "warning"]
    plane.pause("sophia/postgres-cdc")
    assert plane.status(["sophia/postgres-cdc"])[0].status == "taskDisabled"
    with pytest.raises(LocalDataPlaneError, match="paused"):
        plane.run("sophia/postgres-cdc")
    plane.resume("sophia/postgres-cdc")
    plane.run("sophia/postgres-cdc")
    statuses = plane.status(names)
    assert [s.status for s in statuses] == ["ok", "ok", "warning"]
    assert "not runnable here" in statuses[2].message and "HUBSPOT_ACCESS_TOKEN is not set" in statuses[2].message
    (row,) = plane.stats(["sophia/postgres-cdc"], since=datetime.now(UTC) - timedelta(hours=1))
    assert row.bindings["sophia/postgres-cdc/deals"].docs == 1200
    assert row.docs_written_by_me == 200 + 1500 + 1200 + 1500 + 800


def test_dagster_materializes_the_capture_and_reports_hubspot_as_not_runnable(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    catalog = load_catalog(env.catalog_dir)
    translator = DagsterEstuaryTranslator()
    assets = [
        a for task in ("sophia/postgres-cdc", "sophia/hubspot") for a in build_task_assets(catalog, task, translator)
    ]
    resources = {"estuary": env.plane()}
    result = dg.materialize([assets[0]], resources=resources)
    deals = next(
        m for m in result.asset_materializations_for_node(assets[0].op.name) if m.asset_key.path[-1] == "deals"
    )
    assert deals.metadata["rows_backfilled"].value == 1200
    assert deals.metadata["estuary/lag_bytes"].value < 1_000_000
    left_out = dg.materialize([assets[1]], resources=resources)
    assert left_out.success and left_out.get_asset_materialization_events() == []


def test_a_slot_advanced_behind_our_back_stops_before_writing(env: Env) -> None:
    plane = env.plane()
    plane.run("sophia/postgres-cdc")
    with env.source() as conn:
        conn.execute("UPDATE deals SET probability = 2 WHERE id = 1")
        conn.execute("SELECT pg_replication_slot_advance('flow_slot', pg_current_wal_lsn())")
    with pytest.raises(LocalDataPlaneError, match="was advanced to .* beyond the warehouse checkpoint"):
        plane.run("sophia/postgres-cdc")


def test_a_run_while_continuous_mode_streams_waits_for_it_to_catch_up(env: Env) -> None:
    plane = env.plane()
    plane.run("sophia/postgres-cdc")
    stop = threading.Event()
    runner = threading.Thread(
        target=plane.run, args=("sophia/postgres-cdc",), kwargs={"until_caught_up": False, "stop": stop}
    )
    runner.start()
    try:
        with env.source() as conn:
            conn.execute("UPDATE companies SET employees = employees + 1 WHERE id <= 20")
        time.sleep(0.5)
        report = plane.run("sophia/postgres-cdc", wait_seconds=30)
        assert not report.ran_here and report.lag_bytes < 1_000_000
        assert_tables_equal(env, ("companies",))
    finally:
        stop.set()
        runner.join()


def test_the_demo_command_shows_counts_matching_the_source(env: Env, capsys: pytest.CaptureFixture) -> None:
    args = ["--state-dir", str(env.state_dir), "--catalog", str(env.catalog_dir)]
    assert flow_cli([*args, "demo", "--changes", "500"]) == 0
    captured = capsys.readouterr()
    assert "backfill:" in captured.err and "streamed" in captured.err and "MISMATCH" not in captured.err
    counts = json.loads(captured.out)
    assert set(counts) == set(DEMO_TABLES)
    assert all(pair["source"] == pair["warehouse"] > 0 for pair in counts.values())


def test_a_corrupt_state_file_is_named(tmp_path) -> None:
    state = FlowState(tmp_path)
    state.root.mkdir(parents=True)
    state.file.write_text("{not json")
    with pytest.raises(ValueError, match=r"data-plane state .*state.json is corrupt"):
        state.task("sophia/postgres-cdc")


def test_an_unreachable_source_fails_the_run_and_shows_in_status(tmp_path) -> None:
    plane = LocalDataPlane(state_dir=str(tmp_path), postgres_dsn="postgresql://postgres@127.0.0.1:1/sophia")
    with pytest.raises(LocalDataPlaneError, match="cannot start sophia/postgres-cdc"):
        plane.run("sophia/postgres-cdc")
    (status,) = plane.status(["sophia/postgres-cdc"])
    assert status.status == "error" and "127.0.0.1" in status.message

"""Continuous mode SIGKILLed at random moments while changes stream: after a restart nothing is lost or doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sophia_dagster.dataplane import sessions
from sophia_dagster.embedded.demo import generate_changes
from tests.local_dataplane.conftest import Env, assert_tables_equal, write_catalog

REPO = Path(__file__).resolve().parents[2]
AUDIT_SQL = """
CREATE TABLE deals_audit (n bigserial PRIMARY KEY, op text NOT NULL);
CREATE FUNCTION audit_deals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO deals_audit (op) VALUES (TG_OP); RETURN NULL; END $$;
CREATE TRIGGER deals_audit AFTER INSERT OR UPDATE OR DELETE ON deals FOR EACH ROW EXECUTE FUNCTION audit_deals();
"""


def _start_runner(env: Env, log: Path) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [
        sys.executable,
        "-m",
        "sophia_dagster.dataplane.cli",
        "--state-dir",
        str(env.state_dir),
        "--catalog",
        str(env.catalog_dir),
        "run",
        "sophia/postgres-cdc",
    ]
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=out, env=environment, cwd=REPO)


def _checkpoint(env: Env) -> int:
    with env.warehouse() as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT MIN(lsn) FROM FLOW_CHECKPOINTS_V1")
        return int(cursor.fetchone()[0])


def _wait_for_progress(env: Env, runner: subprocess.Popen, log: Path, since: int) -> None:
    deadline = time.monotonic() + 60
    while _checkpoint(env) <= since:
        assert runner.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the continuous runner made no progress"
        time.sleep(0.1)


def _stream_changes(env: Env, stop: threading.Event) -> None:
    seed = 0
    while not stop.is_set():
        generate_changes(env.dsn, 60, seed=seed, per_transaction=20)
        seed += 1
        time.sleep(0.02)


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(env: Env, tmp_path: Path) -> None:
    write_catalog(env.catalog_dir, delta_tables={"deals_log": "deals"})
    with env.source() as conn:
        conn.execute(AUDIT_SQL)
    plane = env.plane()
    plane.run("sophia/postgres-cdc")
    rng = random.Random(1234)
    stop = threading.Event()
    changes = threading.Thread(target=_stream_changes, args=(env, stop), daemon=True)
    changes.start()
    log = tmp_path / "runner.log"
    try:
        for _ in range(5):
            before = _checkpoint(env)
            runner = _start_runner(env, log)
            _wait_for_progress(env, runner, log, before)
            time.sleep(rng.uniform(0.0, 1.0))
            assert runner.poll() is None, log.read_text()[-3000:]
            runner.send_signal(signal.SIGKILL)
            runner.wait()
    finally:
        stop.set()
        changes.join()
    final = plane.run("sophia/postgres-cdc")
    assert final.backfilled == {}, "a restart must resume from the checkpoint, not backfill again"
    assert_tables_equal(env)
    with env.source() as conn:
        events = conn.execute("SELECT count(*) FROM deals_audit").fetchone()[0]
    with env.warehouse() as conn:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT COUNT(*), COUNT(DISTINCT TO_VARCHAR(flow_document:_meta:source:loc) || '/' || TO_VARCHAR(id)) "
            "FROM deals_log"
        )
        rows, distinct = cursor.fetchone()
    assert events > 300, "changes must have streamed while the runner was being killed"
    assert rows == distinct, f"{rows - distinct} duplicated change documents"
    assert rows == 1_200 + events, f"delta table has {rows} documents, expected 1200 backfilled + {events} changes"


def test_a_transaction_left_open_by_a_dead_runner_is_rolled_back_before_writing(env: Env) -> None:
    plane = env.plane()
    plane.run("sophia/postgres-cdc")
    pipeline = plane.pipeline("sophia/postgres-cdc")
    abandoned = env.warehouse().__enter__()
    try:
        cursor = abandoned.cursor()
        cursor.execute("BEGIN")
        cursor.execute("DELETE FROM deals WHERE id <= 10")
        sessions.remember(abandoned, pipeline.session_file)
        assert pipeline.session_file.stat().st_mode & 0o777 == 0o600
        with env.source() as conn:
            conn.execute("UPDATE deals SET probability = 3 WHERE id <= 10")
        report = plane.run("sophia/postgres-cdc")
        assert report.counts["sophia/postgres-cdc/deals"]["updated"] == 10
        assert not pipeline.session_file.exists()
        assert_tables_equal(env, ("deals",))
    finally:
        pipeline.close()

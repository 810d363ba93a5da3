"""The embedded servers hold no secret of the platform, keep their files private and leave nothing after a crash."""

from __future__ import annotations

import glob
import os
import signal
import stat
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sophia_dagster.embedded.postgres import ensure_embedded_postgres
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource, ensure_embedded_warehouse

CANARIES = {
    "SNOWFLAKE_PAT": "pat-canary-71c0e2",
    "ESTUARY_API_TOKEN": "estuary-canary-55ab19",
    "REDIS_URL": "redis://:redis-canary-0d93f1@127.0.0.1:6379/0",
}


def environ_of(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")


def test_embedded_servers_inherit_no_secret(make_state_dir: Callable[[str], Path], monkeypatch) -> None:
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    state_dir = make_state_dir("hygiene-env")
    warehouse = ensure_embedded_warehouse(state_dir).pid
    ensure_embedded_postgres(state_dir)
    postmaster = int((state_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    for pid in (warehouse, postmaster):
        environment = environ_of(pid)
        assert "PATH=" in environment
        leaked = [name for name, value in CANARIES.items() if value in environment or f"{name}=" in environment]
        assert leaked == [], f"pid {pid} inherited {leaked}"


def test_warehouse_files_are_owner_only_like_postgres(make_state_dir: Callable[[str], Path]) -> None:
    state_dir = make_state_dir("hygiene-modes")
    with embedded_snowflake_resource(state_dir).get_connection() as conn:
        conn.cursor().execute("CREATE OR REPLACE TABLE SOPHIA.RAW.PRIVATE AS SELECT 1 AS N")
    ensure_embedded_postgres(state_dir)
    assert stat.S_IMODE((state_dir / "postgres").stat().st_mode) == 0o700
    root = state_dir / "warehouse"
    paths = [root, *root.rglob("*")]
    assert any(path.name == "SOPHIA.db" for path in paths)
    loose = {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in paths if path.stat().st_mode & 0o077}
    assert loose == {}


def test_files_staged_by_a_killed_warehouse_are_removed_when_it_restarts(
    make_state_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    state_dir = make_state_dir("hygiene-stage")
    name = f"staged-{uuid.uuid4().hex}.parquet"
    pq.write_table(pa.table({"n": [1, 2, 3]}), tmp_path / name)
    with embedded_snowflake_resource(state_dir).get_connection() as conn:
        cursor = conn.cursor()
        cursor.execute("CREATE STAGE IF NOT EXISTS HYGIENE_STAGE")
        cursor.execute(f"PUT 'file://{tmp_path / name}' @HYGIENE_STAGE/batch AUTO_COMPRESS=FALSE")

    def staged() -> list[str]:
        roots = [*glob.glob(os.path.join(tempfile.gettempdir(), "fakesnow_bucket_*")), str(state_dir)]
        return [str(path) for root in roots for path in Path(root).rglob(name)]

    assert staged(), "the PUT left no file in the warehouse's stage"
    server = psutil.Process(ensure_embedded_warehouse(state_dir).pid)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    ensure_embedded_warehouse(state_dir)
    assert staged() == []


@pytest.fixture(autouse=True)
def _no_leftover_canaries(monkeypatch) -> None:
    """The canaries only live in this module's tests."""
    for name in CANARIES:
        monkeypatch.delenv(name, raising=False)

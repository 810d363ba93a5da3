"""The README's demo command: the main job on the embedded engines, a burst of changes, counts that match."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sophia_dagster.config import FIELD_NAMES
from sophia_dagster.embedded.demo import TABLES
from sophia_dagster.embedded.postgres import stop_embedded_postgres
from sophia_dagster.warehouse.embedded import stop_embedded_warehouse


def test_demo_runs_the_main_job_and_the_warehouse_matches_the_source(tmp_path: Path, redis_url: str) -> None:
    state_dir = tmp_path / "state"
    ours = {name.upper() for name in FIELD_NAMES} | {"FLOW_AUTH_TOKEN", "SOPHIA_CONFIG_FILE"}
    env = {key: value for key, value in os.environ.items() if key not in ours}
    env.update(STATE_DIR=str(state_dir), DAGSTER_HOME=str(tmp_path / "dagster_home"), REDIS_URL=redis_url)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "sophia_dagster.demo"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stop_embedded_warehouse(state_dir)
        stop_embedded_postgres(state_dir)
    assert result.returncode == 0, result.stdout[-2_000:] + result.stderr[-3_000:]
    out = result.stdout
    assert out.count("succeeded:") == 2 and "FAILED" not in out
    assert sum(line.strip().startswith(TABLES) and line.endswith("ok") for line in out.splitlines()) == len(TABLES)
    assert "make ui" in out
    assert len(list((tmp_path / "dagster_home").glob("**/*.db"))) > 0

"""The README's governance commands over demo-equivalent data: every check passes in local and the report is
written, from `dagster job execute` and again from `dg launch` (which then reports the trend)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sophia_dagster.config import FIELD_NAMES
from sophia_dagster.governance.report import latest_report, report_path
from tests.governance.conftest import World

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(world: World, home: Path) -> dict[str, str]:
    ours = {name.upper() for name in FIELD_NAMES} | {"FLOW_AUTH_TOKEN", "SOPHIA_CONFIG_FILE"}
    env = {key: value for key, value in os.environ.items() if key not in ours}
    env.update(STATE_DIR=str(world.state_dir), DAGSTER_HOME=str(home))
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return env


def _run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(command, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4_000:]
    return output


def test_governance_daily_passes_every_check_and_writes_the_report(world: World, tmp_path: Path) -> None:
    env = _env(world, tmp_path / "home")
    out = _run(
        [str(BIN / "dagster"), "job", "execute", "-m", "sophia_dagster.definitions", "-j", "governance_daily"],
        env,
        tmp_path,
    )
    assert "RUN_SUCCESS" in out and "failed" not in out.split("RUN_SUCCESS")[0].lower().replace("failed with", "")
    first = latest_report(world.state_dir)
    assert first is not None and "0 warnings, 0 errors**" in first and "not run yet" not in first
    assert "| snowflake/sophia/raw/deals: parity | passed |" in first
    assert "| sophia/postgres-cdc | ok |" in first
    assert (report_path(world.state_dir).parent / "health_report.png").is_file()

    out = _run([str(BIN / "dg"), "launch", "--job", "governance_daily"], env, REPO)
    assert "RUN_SUCCESS" in out
    second = latest_report(world.state_dir)
    assert second != first and "## Since the previous report (none)" not in second
    assert "New failures: none" in second and "0 errors**" in second

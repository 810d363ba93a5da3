"""The README's Dagster commands for operators, run against the production instance (deploy/dagster.yaml)."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster._core.scheduler.instigation import InstigatorStatus

from tests.deploy.conftest import REPO
from tests.readme import commands_under

BIN = Path(sys.executable).parent


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [str(BIN / Path(argv[0]).name), *argv[1:]]
    return subprocess.run(command, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_validate_the_definitions_before_a_catalog_upgrade(tmp_path: Path, dagster_environ: dict[str, str]) -> None:
    (validate,) = [argv for argv in commands_under("Upgrading the catalog safely") if "validate" in argv]
    done = run(validate, {**dagster_environ, "STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_stop_and_start_the_estuary_sensor(tmp_path: Path, dagster_environ: dict[str, str]) -> None:
    stop, start = [
        argv for argv in commands_under("Pausing a pipeline") if argv[1:3] in (["sensor", "stop"], ["sensor", "start"])
    ]
    env = {**dagster_environ, "STATE_DIR": str(tmp_path / "state")}

    def status() -> InstigatorStatus:
        with dg.DagsterInstance.get() as instance:
            (state,) = [s for s in instance.all_instigator_state() if s.name == "estuary_activity_sensor"]
            return state.status

    done = run(stop, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert status() == InstigatorStatus.STOPPED
    done = run(start, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert status() == InstigatorStatus.RUNNING

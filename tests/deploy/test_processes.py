"""The production process layout on one machine: code servers, webserver and daemon as separate processes.

Two code locations are served over gRPC: the platform's own (`-m sophia_dagster.definitions`) and the tiny
`tick_defs.py`, whose schedule and sensor the daemon must tick. The instance is deploy/dagster.yaml on a
throwaway PostgreSQL database. Every process is started on a free port and stopped afterwards.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import yaml
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorType,
    ScheduleInstigatorData,
)
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from tests.deploy.conftest import DEPLOY, REPO, free_port
from tests.readme import commands_under

BIN = Path(sys.executable).parent
PROBE = "deploy_probe"
REPOSITORY = "__repository__"
TICK_QUERY = """
query Ticks($schedule: ScheduleSelector!, $sensor: SensorSelector!) {
  scheduleOrError(scheduleSelector: $schedule) { ... on Schedule { scheduleState { ticks(limit: 5) { status runIds } } } }
  sensorOrError(sensorSelector: $sensor) { ... on Sensor { sensorState { ticks(limit: 5) { status runIds } } } }
}"""
WORKSPACE_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError {
    __typename ... on RepositoryLocation { repositories { name assetNodes { id } schedules { name } sensors { name } } }
    ... on PythonError { message } } } } } }"""
RUNS_QUERY = """
query Runs($ids: [String!]) { runsOrError(filter: {runIds: $ids}) { ... on Runs { results { runId status } } } }"""


class Processes:
    """Subprocesses of this test, each in a session of its own so the whole tree is stopped with it."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.started = env, logs, []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            args, env=env or self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]


def wait_for(what: str, check: Callable[[], Any], seconds: float, processes: Processes) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` (with the logs) after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
        except (httpx.HTTPError, KeyError, TypeError):
            found = None
        if found:
            return found
        for process in processes.started:
            assert process.poll() is None, f"{process.args[:3]} exited while waiting for {what}"
        time.sleep(0.5)
    logs = "\n".join(f"--- {p.name}\n{processes.log(p.stem)}" for p in sorted(processes.logs.glob("*.log")))
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def readme_command(program: str, subcommand: str, replacements: dict[str, str]) -> list[str]:
    """The README's "Deploying" command for `program subcommand`, with this test's ports and paths."""
    (argv,) = [argv for argv in commands_under("Deploying") if Path(argv[0]).name == program and subcommand in argv]
    return [str(BIN / program), *(replacements.get(arg, arg) for arg in argv[1:])]


def healthy(port: int, env: dict[str, str]) -> bool:
    """The README's (and the Helm readiness probe's) health check against a local port."""
    command = readme_command("dagster", "grpc-health-check", {"4000": str(port)})
    return subprocess.run(command, check=False, env=env, capture_output=True, timeout=30).returncode == 0


def graphql(port: int, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = httpx.post(
        f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
    )
    answer.raise_for_status()
    return answer.json()["data"]


def write_workspace(path: Path, platform_port: int, probe_port: int) -> None:
    """deploy/workspace.yaml with this test's port, plus the probe location."""
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=platform_port)
    workspace["load_from"].append({"grpc_server": {"host": "127.0.0.1", "port": probe_port, "location_name": PROBE}})
    path.write_text(yaml.safe_dump(workspace))


def prepare_instigators(workspace: Path) -> None:
    """Before the daemon starts: the probe schedule started a day ago (so one tick is due now), and the
    platform's own sensors stopped (they would run the embedded data plane, which this test is not about)."""
    with (
        dg.DagsterInstance.get() as instance,
        WorkspaceProcessContext(instance, WorkspaceFileTarget([str(workspace)])) as context,
    ):
        request = context.create_request_context()
        schedule = request.get_code_location(PROBE).get_repository(REPOSITORY).get_schedule("deploy_probe_schedule")
        data = ScheduleInstigatorData(schedule.cron_schedule, start_timestamp=time.time() - 86_400 - 60)
        state = InstigatorState(schedule.get_remote_origin(), InstigatorType.SCHEDULE, InstigatorStatus.RUNNING, data)
        instance.add_instigator_state(state)
        for sensor in request.get_code_location("sophia_dagster").get_repository(REPOSITORY).get_sensors():
            instance.add_instigator_state(
                InstigatorState(sensor.get_remote_origin(), InstigatorType.SENSOR, InstigatorStatus.STOPPED)
            )


@pytest.fixture
def processes(dagster_environ: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    env = {**dagster_environ, "ENVIRONMENT": "local", "STATE_DIR": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
    started = Processes(env, tmp_path)
    yield started
    started.stop()


@pytest.mark.timeout(240)
def test_webserver_and_daemon_run_the_code_location_over_grpc(
    processes: Processes, dagster_environ: dict[str, str], tmp_path: Path
) -> None:
    env = processes.env
    platform_port, probe_port, web_port = free_port(), free_port(), free_port()
    assert not healthy(platform_port, env)
    local = {"0.0.0.0": "127.0.0.1", "4000": str(platform_port), "3000": str(web_port)}
    processes.start("platform", *readme_command("dagster", "code-server", local))
    probe = [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(probe_port)]
    processes.start("probe", *probe, "-f", str(Path(__file__).with_name("tick_defs.py")))
    wait_for(
        "both code servers to pass the readiness probe",
        lambda: healthy(platform_port, env) and healthy(probe_port, env),
        90,
        processes,
    )

    workspace = tmp_path / "workspace.yaml"
    write_workspace(workspace, platform_port, probe_port)
    prepare_instigators(workspace)
    local["deploy/workspace.yaml"] = str(workspace)
    # The webserver and the daemon get only the instance's variables, none of the platform's settings.
    processes.start("webserver", *readme_command("dagster-webserver", "-w", local), env=dagster_environ)
    processes.start("daemon", *readme_command("dagster-daemon", "run", local), env=dagster_environ)

    entries = wait_for(
        "the webserver to load both locations",
        lambda: graphql(web_port, WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"],
        60,
        processes,
    )
    loaded = {entry["name"]: entry["locationOrLoadError"] for entry in entries}
    assert set(loaded) == {"sophia_dagster", PROBE}
    platform = loaded["sophia_dagster"]
    assert platform["__typename"] == "RepositoryLocation", platform
    assert len(platform["repositories"][0]["assetNodes"]) > 10
    assert loaded[PROBE]["repositories"][0]["schedules"] == [{"name": "deploy_probe_schedule"}]

    selectors = {
        "schedule": {
            "repositoryLocationName": PROBE,
            "repositoryName": REPOSITORY,
            "scheduleName": "deploy_probe_schedule",
        },
        "sensor": {"repositoryLocationName": PROBE, "repositoryName": REPOSITORY, "sensorName": "deploy_probe_sensor"},
    }

    def ticked() -> dict[str, list[str]] | None:
        data = graphql(web_port, TICK_QUERY, selectors)
        ticks = {
            "schedule": data["scheduleOrError"]["scheduleState"]["ticks"],
            "sensor": data["sensorOrError"]["sensorState"]["ticks"],
        }
        runs = {
            kind: [r for t in found if t["status"] == "SUCCESS" for r in t["runIds"]] for kind, found in ticks.items()
        }
        return runs if all(runs.values()) else None

    runs = wait_for("a schedule tick and a sensor tick that each launched a run", ticked, 60, processes)
    run_ids = runs["schedule"] + runs["sensor"]

    def finished() -> list[dict[str, str]] | None:
        results = graphql(web_port, RUNS_QUERY, {"ids": run_ids})["runsOrError"]["results"]
        done = all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in results) and len(results) == len(run_ids)
        return results if done else None

    results = wait_for("the ticks' runs to finish", finished, 60, processes)
    assert {r["status"] for r in results} == {"SUCCESS"}
    with dg.DagsterInstance.get() as instance:
        events = instance.fetch_materializations(dg.AssetKey(PROBE), limit=10).records
    assert {e.asset_materialization.metadata["requested_by"].value for e in events} == {
        "deploy_probe_schedule",
        "deploy_probe_sensor",
    }

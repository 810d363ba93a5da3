"""Per-step overhead of a shell run: run wall time minus the steps' own compute, divided by the steps.

The run is the one a user types, `dagster asset materialize -m sophia_dagster.definitions --select ...`,
over a state directory the demo has filled. Two executors take turns in the same benchmark run:

- baseline: Dagster's default multiprocess executor, which spawns a fresh interpreter per step that
  imports the whole code location again (this file's own `spawning` definitions: the code location
  with that executor, run with `-f`);
- ours: the code location's warm executor (`defs/executor.py`), whose steps fork from a forkserver
  that loaded the code location once.

Steps run one at a time (DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT=1) so that the run's wall time
is the sum of its steps' compute and their overhead. A step's compute is its STEP_SUCCESS duration.

The overhead has a part paid once per run, whatever its number of steps: the first step waits for its
process to start (for ours, for the forkserver to import and build the code location). That part is the
first step's STEP_WORKER_STARTING -> STEP_WORKER_STARTED minus the median of the other steps' (what any
step waits); the rest, divided by the steps, is what each further step costs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import dagster as dg

import sophia_dagster.definitions as location

REPO = Path(__file__).resolve().parents[1]
SELECTION = 'key:"snowflake/sophia/analytics/*" or key:"memory/*"'
ROUNDS = 3
TARGET_SECONDS = 0.5


@dg.definitions
def spawning() -> dg.Definitions:
    """The code location as it ran before: every step a freshly spawned interpreter."""
    loaded = location.defs()
    return dg.Definitions(
        assets=loaded.assets,
        asset_checks=loaded.asset_checks,
        resources=loaded.resources,
        executor=dg.multiprocess_executor,
    )


OURS = "forkserver (ours)"
TARGETS = {
    "spawn (Dagster's default, baseline)": ["-f", str(Path(__file__).resolve())],
    OURS: ["-m", "sophia_dagster.definitions"],
}


def _env(state_dir: Path, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "STATE_DIR": str(state_dir),
        "DAGSTER_HOME": str(home),
        "DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT": "1",
    }


def _prepare(state_dir: Path, home: Path) -> None:
    """A demo'd state directory: seeded source, raw tables, models and memory tiers in place."""
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    subprocess.run(
        [sys.executable, "-m", "sophia_dagster.demo"],
        cwd=REPO,
        env=_env(state_dir, home),
        check=True,
        stdout=subprocess.DEVNULL,
    )


class Run(NamedTuple):
    """One shell run's figures, in seconds."""

    wall: float
    compute: float
    steps: int
    command: float
    first_start: float

    @property
    def per_step(self) -> float:
        """The overhead per step: run wall minus the steps' compute, divided by the steps."""
        return (self.wall - self.compute) / self.steps

    @property
    def per_further_step(self) -> float:
        """The overhead per step without the part paid once per run (the first step's process start)."""
        return (self.wall - self.compute - self.first_start) / self.steps


def _first_start(events: list[dg.EventLogEntry]) -> float:
    """How much longer the first step's process took to start than the others' (median)."""
    starts = {
        entry.step_key: entry.timestamp
        for entry in events
        if entry.dagster_event.event_type_value == "STEP_WORKER_STARTING"
    }
    waits = [
        entry.timestamp - starts[entry.step_key]
        for entry in events
        if entry.dagster_event.event_type_value == "STEP_WORKER_STARTED"
    ]
    return waits[0] - statistics.median(waits[1:])


def _run(target: list[str], state_dir: Path, home: Path) -> Run:
    """One shell run of `target` over the demo'd state directory."""
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", *target, "--select", SELECTION],
        cwd=REPO,
        env=_env(state_dir, home),
        check=True,
        capture_output=True,
    )
    command = time.perf_counter() - started
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(limit=1)[0]
        events = [entry for entry in instance.all_logs(run.run_id) if entry.dagster_event]
    stamps = {entry.dagster_event.event_type_value: entry.timestamp for entry in events}
    compute = [
        entry.dagster_event.event_specific_data.duration_ms / 1000
        for entry in events
        if entry.dagster_event.event_type_value == "STEP_SUCCESS"
    ]
    wall = stamps["PIPELINE_SUCCESS"] - stamps["PIPELINE_START"]
    return Run(wall, sum(compute), len(compute), command, _first_start(events))


def main() -> None:
    """Print the median per-step overhead of each executor, their ratio, and ours without its once-per-run part."""
    with tempfile.TemporaryDirectory(prefix="step-overhead-") as tmp:
        state_dir, home = Path(tmp) / "state", Path(tmp) / "dagster_home"
        try:
            _prepare(state_dir, home)
            runs: dict[str, list[Run]] = {name: [] for name in TARGETS}
            for _ in range(ROUNDS):
                for name, target in TARGETS.items():
                    run = _run(target, state_dir, home)
                    runs[name].append(run)
                    print(
                        f"{name:<36} run {run.wall:6.2f} s, compute {run.compute:5.2f} s, {run.steps} steps,"
                        f" {run.per_step:.3f} s overhead per step; first step's process start"
                        f" {run.first_start:.2f} s longer, {run.per_further_step:.3f} s per step besides"
                        f" (command {run.command:.1f} s)"
                    )
        finally:
            subprocess.run(
                [sys.executable, "-m", "sophia_dagster.stop"], cwd=REPO, env=_env(state_dir, home), check=True
            )
    baseline, ours = (statistics.median(run.per_step for run in values) for values in runs.values())
    print(f"median overhead per step: spawn {baseline:.3f} s, forkserver {ours:.3f} s")
    print(
        f"ratio forkserver / spawn: {ours / baseline:.2f}x ({baseline / ours:.1f}x less); target < {TARGET_SECONDS} s"
    )
    once = statistics.median(run.first_start for run in runs[OURS])
    further = statistics.median(run.per_further_step for run in runs[OURS])
    print(
        f"forkserver: {once:.2f} s once per run (the forkserver's start: importing and building the code location),"
        f" {further:.3f} s per step besides (target < {TARGET_SECONDS} s)"
    )


if __name__ == "__main__":
    main()

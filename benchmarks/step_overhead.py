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
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


TARGETS = {
    "spawn (Dagster's default, baseline)": ["-f", str(Path(__file__).resolve())],
    "forkserver (ours)": ["-m", "sophia_dagster.definitions"],
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


def _run(target: list[str], state_dir: Path, home: Path) -> tuple[float, float, int, float]:
    """One shell run: (run wall seconds, steps' compute seconds, steps, command wall seconds)."""
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
    return stamps["PIPELINE_SUCCESS"] - stamps["PIPELINE_START"], sum(compute), len(compute), command


def main() -> None:
    """Print the median per-step overhead of each executor and their ratio."""
    with tempfile.TemporaryDirectory(prefix="step-overhead-") as tmp:
        state_dir, home = Path(tmp) / "state", Path(tmp) / "dagster_home"
        try:
            _prepare(state_dir, home)
            per_step: dict[str, list[float]] = {name: [] for name in TARGETS}
            for _ in range(ROUNDS):
                for name, target in TARGETS.items():
                    wall, compute, steps, command = _run(target, state_dir, home)
                    per_step[name].append((wall - compute) / steps)
                    print(
                        f"{name:<36} run {wall:6.2f} s, compute {compute:5.2f} s, {steps} steps,"
                        f" {per_step[name][-1]:.3f} s overhead per step (command {command:.1f} s)"
                    )
        finally:
            subprocess.run(
                [sys.executable, "-m", "sophia_dagster.stop"], cwd=REPO, env=_env(state_dir, home), check=True
            )
    baseline, ours = (statistics.median(values) for values in per_step.values())
    print(f"median overhead per step: spawn {baseline:.3f} s, forkserver {ours:.3f} s")
    print(
        f"ratio forkserver / spawn: {ours / baseline:.2f}x ({baseline / ours:.1f}x less); target < {TARGET_SECONDS} s"
    )


if __name__ == "__main__":
    main()

"""Fixtures shared by every test area: a throwaway state directory with the embedded engines, and Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sophia_dagster.config import FIELD_NAMES
from sophia_dagster.embedded.postgres import stop_embedded_postgres
from sophia_dagster.warehouse.embedded import stop_embedded_warehouse

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def make_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """Makes state directories for embedded engines; every engine started in one is stopped after the session."""
    made: list[Path] = []

    def make(name: str) -> Path:
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield make
    for state_dir in made:
        stop_embedded_warehouse(state_dir)
        stop_embedded_postgres(state_dir)


def user_env(state_dir: Path, dagster_home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with nothing of ours set: only STATE_DIR, DAGSTER_HOME (telemetry off) and `extra`."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    ours = {name.upper() for name in FIELD_NAMES} | {"FLOW_AUTH_TOKEN", "SOPHIA_CONFIG_FILE", "HUBSPOT_ACCESS_TOKEN"}
    env = {key: value for key, value in os.environ.items() if key not in ours}
    return {**env, "STATE_DIR": str(state_dir), "DAGSTER_HOME": str(dagster_home), **extra}


@dataclass(frozen=True)
class DemoRun:
    """A finished `python -m sophia_dagster.demo`: its state directory, Dagster home, environment and output."""

    state_dir: Path
    dagster_home: Path
    env: dict[str, str]
    result: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def demo_run(make_state_dir: Callable[[str], Path], redis_url: str) -> Iterator[DemoRun]:
    """The README's `make demo` run once per session; tests that need a demo'd state (web UI, CLIs) share it."""
    root = make_state_dir("demo")
    state_dir, home = root / "state", root / "dagster_home"
    env = user_env(state_dir, home, REDIS_URL=redis_url)
    result = subprocess.run(
        [sys.executable, "-m", "sophia_dagster.demo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    yield DemoRun(state_dir, home, env, result)
    stop_embedded_warehouse(state_dir)
    stop_embedded_postgres(state_dir)


@pytest.fixture(scope="session")
def embedded_state_dir(make_state_dir: Callable[[str], Path]) -> Path:
    """The state directory shared by the areas that do not need one of their own."""
    return make_state_dir("sophia-state")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when set; otherwise a throwaway redis-server on a free port (the machine's default as a last resort)."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield "redis://127.0.0.1:6379/0"
        return
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)

"""Starting and stopping the long-running commands a user types (`make ui`, `dg dev`) from a test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_webserver(url: str, process: subprocess.Popen, log: Path, timeout: float = 240.0) -> None:
    """Return once the Dagster webserver at `url` answers and its code location has loaded; fail with its log."""
    deadline = time.monotonic() + timeout
    query = {"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited {process.returncode}:\n{log.read_text()[-3_000:]}")
        try:
            entries = httpx.post(f"{url}/graphql", json=query, timeout=5).json()["data"]["workspaceOrError"]
            if entries["locationEntries"] and all(e["loadStatus"] == "LOADED" for e in entries["locationEntries"]):
                return
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not load its code location in {timeout} s:\n{log.read_text()[-3_000:]}")


@contextmanager
def serving(command: list[str], cwd: Path, env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """Run `command` (a web UI on `port`) in its own process group until the block ends; yield its URL."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_webserver(url, process, log)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

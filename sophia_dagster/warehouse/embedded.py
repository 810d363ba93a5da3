"""The embedded Snowflake-compatible warehouse for `local`: fakesnow's HTTP server over DuckDB files.

One background server per state directory owns the DuckDB files; every process (web UI, CLI, run
workers, tests) talks to it over the Snowflake protocol, so the files are never opened twice and local
runs use the same `SnowflakeResource` code path as production.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import snowflake.connector.errors
from dagster_snowflake import SnowflakeResource
from pydantic import Field

from sophia_dagster.embedded.environment import server_environment
from sophia_dagster.embedded.errors import EmbeddedServerError
from sophia_dagster.embedded.postgres import file_lock

START_TIMEOUT_SECONDS = 20.0
NETWORK_TIMEOUT_SECONDS = 300
RETRY_SLEEPS_SECONDS = (0, 1, 2, 4)


class EmbeddedWarehouseGoneError(snowflake.connector.errors.OperationalError):
    """The embedded warehouse server exited while a connection was using it (killed, crashed, stopped)."""


@dataclass(frozen=True)
class WarehouseEndpoint:
    """Where the embedded warehouse listens."""

    host: str
    port: int
    pid: int


def _paths(state_dir: Path) -> tuple[Path, Path, Path, Path]:
    root = Path(state_dir).resolve() / "warehouse"
    return root, root / "server.json", root / "server.lock", root / "server.log"


def _answers(endpoint: WarehouseEndpoint) -> bool:
    try:
        os.kill(endpoint.pid, 0)
        with socket.create_connection((endpoint.host, endpoint.port), timeout=0.5):
            return True
    except OSError:
        return False


def _read_endpoint(info: Path) -> WarehouseEndpoint | None:
    try:
        return WarehouseEndpoint(**json.loads(info.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _spawn(root: Path, info: Path, log: Path) -> WarehouseEndpoint:
    info.unlink(missing_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sophia_dagster.warehouse.embedded_server", str(root)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            env=server_environment(),
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        endpoint = _read_endpoint(info)
        if endpoint and endpoint.pid == process.pid and _answers(endpoint):
            return endpoint
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    tail = log.read_text(errors="replace")[-2_000:]
    raise EmbeddedServerError(f"the embedded warehouse under {root} did not start; its log ({log}) ends with:\n{tail}")


def ensure_embedded_warehouse(state_dir: Path) -> WarehouseEndpoint:
    """The running warehouse server for `state_dir`, started in the background if none answers."""
    root, info, lock, log = _paths(state_dir)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    with file_lock(lock):
        endpoint = _read_endpoint(info)
        if endpoint and _answers(endpoint):
            return endpoint
        return _spawn(root, info, log)


def stop_embedded_warehouse(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the warehouse server for `state_dir` (it checkpoints its files on the way out); False when none ran."""
    root, info, lock, _ = _paths(state_dir)
    if not root.exists():
        return False
    with file_lock(lock):
        endpoint = _read_endpoint(info)
        if endpoint is None:
            return False
        try:
            os.kill(endpoint.pid, signal.SIGTERM)
        except ProcessLookupError:
            info.unlink(missing_ok=True)
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(endpoint.pid):
            time.sleep(0.05)
        info.unlink(missing_ok=True)
        return True


def _pid_alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def retry_while_alive(endpoint: WarehouseEndpoint, log: Path) -> Callable[[], Iterator[int]]:
    """A connector backoff policy that stops retrying as soon as the server process is gone.

    The connector retries a failed request until its network timeout; against a dead loopback server that
    only delays the failure (and then every ROLLBACK and DROP of the cleanup waits again). The policy is
    asked for the next sleep before each retry: it checks the server first and raises when it has exited.
    """

    def policy() -> Iterator[int]:
        yield RETRY_SLEEPS_SECONDS[0]
        attempt = 1
        while True:
            if not _pid_alive(endpoint.pid):
                raise EmbeddedWarehouseGoneError(
                    msg=f"the embedded warehouse server (pid {endpoint.pid}, port {endpoint.port}) exited while "
                    f"this connection was using it; its log is {log}"
                )
            yield RETRY_SLEEPS_SECONDS[min(attempt, len(RETRY_SLEEPS_SECONDS) - 1)]
            attempt += 1

    return policy


class EmbeddedSnowflakeResource(SnowflakeResource):
    """`SnowflakeResource` pointed at the embedded warehouse, which it starts on first connection."""

    state_dir: str = Field(description="State directory whose embedded warehouse to use")

    @property
    def _connection_args(self) -> Mapping[str, Any]:
        endpoint = ensure_embedded_warehouse(Path(self.state_dir))
        return {
            **super()._connection_args,
            "host": endpoint.host,
            "port": endpoint.port,
            "protocol": "http",
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
            "network_timeout": NETWORK_TIMEOUT_SECONDS,
            "login_timeout": 30,
            "backoff_policy": retry_while_alive(endpoint, _paths(Path(self.state_dir))[3]),
        }


def embedded_snowflake_resource(
    state_dir: Path, database: str = "SOPHIA", schema: str = "RAW"
) -> EmbeddedSnowflakeResource:
    """A SnowflakeResource for the embedded warehouse (nothing starts until a connection is made)."""
    return EmbeddedSnowflakeResource(
        state_dir=str(Path(state_dir).resolve()),
        account="fakesnow",
        user="sophia",
        password="embedded",
        database=database,
        schema=schema,
    )

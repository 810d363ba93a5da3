"""``sophia-flow`` as a user runs it: a subprocess, a live status line while it streams, a prompt stop on
SIGTERM, and one clean line (no traceback) when the configuration is unusable."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.local_dataplane.conftest import Env

CLI = str(Path(sys.executable).with_name("sophia-flow"))


def test_a_configuration_error_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SNOWFLAKE_", "ESTUARY_", "FLOW_", "PULUMI_"))}
    done = subprocess.run(
        [CLI, "status"], cwd=tmp_path, env={**environ, "ENVIRONMENT": "prod"}, capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("sophia-flow: invalid configuration") and "SNOWFLAKE_ACCOUNT" in line


def test_run_shows_a_live_status_line_and_stops_promptly_on_sigterm(env: Env) -> None:
    env.plane().run("sophia/postgres-cdc")
    process = subprocess.Popen(
        [CLI, "--state-dir", str(env.state_dir), "--catalog", str(env.catalog_dir), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while not any("changes/s" in line for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, lines
            time.sleep(0.1)
        with env.source() as conn:
            conn.execute("UPDATE deals SET probability = probability WHERE id <= 40")
        while not any("deals +0 ~40 -0" in line and " B |" in line for line in lines):
            assert time.monotonic() < deadline, lines[-3:]
            time.sleep(0.1)
        assert any(re.match(r"[1-9][0-9,]* changes/s \| lag ", line) for line in lines), lines
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        assert time.monotonic() - sent < 1.0
    finally:
        process.kill()
    summary = json.loads(process.stdout.read())
    assert process.returncode == 0 and summary["rows"]["sophia/postgres-cdc/deals"] == {"updated": 40}

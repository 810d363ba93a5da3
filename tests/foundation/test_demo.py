"""The README's demo command: the main job on the embedded engines, a burst of changes, counts that match."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from sophia_dagster.embedded.demo import TABLES
from tests.conftest import DemoRun

# The first test to ask for the shared demo pays for it.
pytestmark = pytest.mark.timeout(900)


def test_demo_runs_the_main_job_and_the_warehouse_matches_the_source(demo_run: DemoRun) -> None:
    result = demo_run.result
    assert result.returncode == 0, result.stdout[-2_000:] + result.stderr[-3_000:]
    out = result.stdout
    assert out.count("succeeded:") == 2 and "FAILED" not in out
    assert sum(line.strip().startswith(TABLES) and line.endswith("ok") for line in out.splitlines()) == len(TABLES)
    assert "make ui" in out and "make stop" in out
    assert len(list(demo_run.dagster_home.glob("**/*.db"))) > 0


def test_the_printed_psql_command_reaches_the_embedded_source(demo_run: DemoRun) -> None:
    match = re.search(r"^  psql '([^']+)'$", demo_run.result.stdout, re.MULTILINE)
    assert match, demo_run.result.stdout[-2_000:]
    psql = shutil.which("psql")
    assert psql, "psql (PostgreSQL's client) is not on PATH"
    counted = subprocess.run(
        [psql, match.group(1), "-tAc", "SELECT count(*) > 0 FROM public.deals"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.strip() == "t"

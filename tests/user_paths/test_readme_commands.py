"""Every command the README shows is run by a test, the way the user types it.

`RUN_BY` maps each command line of the README's bash blocks to the test that runs it; a README
command without an entry fails the first test, so a new command cannot go untested.
"""

from __future__ import annotations

import importlib
import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from sophia_dagster.embedded.postgres import ensure_embedded_postgres
from sophia_dagster.warehouse.embedded import ensure_embedded_warehouse
from tests.conftest import BIN, REPO, DemoRun, user_env
from tests.user_paths.servers import free_port, serving

# Each test starts one or more Dagster CLIs or servers; the first also pays for the shared demo.
pytestmark = pytest.mark.timeout(900)
ANALYTICS = 'key:"snowflake/sophia/analytics/*"'
PROCESSES = "tests.deploy.test_processes::test_webserver_and_daemon_run_the_code_location_over_grpc"
SENSOR = "tests.deploy.test_operator_commands::test_stop_and_start_the_estuary_sensor"
GOVERNANCE = "tests.governance.test_governance_job::test_governance_daily_passes_every_check_and_writes_the_report"
UPGRADE = "tests.estuary.test_operate::test_the_readmes_upgrade_steps_dry_run_then_publish"
PAUSE = "tests.estuary.test_operate::test_the_readmes_pause_status_resume"
RUN_BY = {
    "make demo": "tests.foundation.test_demo::test_demo_runs_the_main_job_and_the_warehouse_matches_the_source",
    "make test": "(.ci/run runs it: the suite itself)",
    "make ui": "tests.user_paths.test_web_ui::test_the_web_ui_in_a_real_browser",
    "make stop": "tests.user_paths.test_readme_commands::test_make_stop_stops_both_embedded_servers",
    "make bench": "(benchmarks are measured, not tested: see benchmarks/)",
    ".venv/bin/dagster asset materialize -m sophia_dagster.definitions --select '*'": "tests.user_paths.test_shell_materialize::test_materialize_everything_on_a_fresh_state",
    ".venv/bin/dg launch --assets '*'": "tests.user_paths.test_shell_materialize::test_materialize_everything_on_a_fresh_state",
    f".venv/bin/dagster asset materialize -m sophia_dagster.definitions --select '{ANALYTICS}'": "tests.user_paths.test_readme_commands::test_materialize_the_models_from_the_shell",
    ".venv/bin/dg launch --assets 'group:analytics'": "tests.user_paths.test_readme_commands::test_materialize_the_models_from_the_shell",
    ".venv/bin/dagster definitions validate -m sophia_dagster.definitions": "tests.foundation.test_definitions::test_dagster_cli_validates_the_code_location",
    ".venv/bin/dg check defs": "tests.user_paths.test_readme_commands::test_dg_checks_and_lists_the_definitions",
    ".venv/bin/dg list defs": "tests.user_paths.test_readme_commands::test_dg_checks_and_lists_the_definitions",
    ".venv/bin/dg dev --port 3001": "tests.user_paths.test_readme_commands::test_dg_dev_serves_the_code_location",
    ".venv/bin/sophia-config show": "tests.user_paths.test_readme_commands::test_sophia_config_show",
    ".venv/bin/sophia-flow run": "tests.user_paths.test_readme_commands::test_sophia_flow_commands",
    ".venv/bin/sophia-flow status | stats | pause sophia/postgres-cdc | resume sophia/postgres-cdc": "tests.user_paths.test_readme_commands::test_sophia_flow_commands",
    ".venv/bin/sophia-flow reset sophia/postgres-cdc": "tests.local_dataplane.test_edge_cases::test_a_dropped_slot_stops_with_a_clear_message_and_reset_recovers",
    ".venv/bin/dagster code-server start -h 0.0.0.0 -p 4000 -m sophia_dagster.definitions": PROCESSES,
    ".venv/bin/dagster api grpc-health-check -p 4000": PROCESSES,
    ".venv/bin/dagster-webserver -w deploy/workspace.yaml -h 0.0.0.0 -p 3000": PROCESSES,
    ".venv/bin/dagster-daemon run -w deploy/workspace.yaml": PROCESSES,
    ".venv/bin/dagster sensor stop estuary_activity_sensor -m sophia_dagster.definitions": SENSOR,
    ".venv/bin/dagster sensor start estuary_activity_sensor -m sophia_dagster.definitions": SENSOR,
    ".venv/bin/dagster job execute -m sophia_dagster.definitions -j governance_daily": GOVERNANCE,
    ".venv/bin/dg launch --job governance_daily": GOVERNANCE,
    ".venv/bin/sophia-doctor": "tests.foundation.test_doctor::test_local_with_redis_stopped_runs_degraded",
    ".venv/bin/sophia-estuary publish --dry-run": UPGRADE,
    ".venv/bin/sophia-estuary publish": UPGRADE,
    ".venv/bin/sophia-estuary pause sophia/postgres-cdc": PAUSE,
    ".venv/bin/sophia-estuary status sophia/postgres-cdc": PAUSE,
    ".venv/bin/sophia-estuary resume sophia/postgres-cdc": PAUSE,
}


def readme_commands() -> list[str]:
    """Each line of the README's bash blocks, without its comment."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    lines = (line.split("  #")[0].split(" # ")[0].strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line]


def test_every_readme_command_is_run_by_a_test() -> None:
    commands = readme_commands()
    assert set(commands) <= set(RUN_BY), sorted(set(commands) - set(RUN_BY))
    for where in {RUN_BY[command] for command in commands if not RUN_BY[command].startswith("(")}:
        module, name = where.split("::")
        assert callable(getattr(importlib.import_module(module), name, None)), f"{where} does not exist"


def _run(command: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"{command} exited {result.returncode}:\n{result.stdout[-2_000:]}{result.stderr[-4_000:]}"
    )
    return result


def _materialized_since(home: Path, keys: set[dg.AssetKey], after: float) -> set[dg.AssetKey]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        events = {key: instance.get_latest_materialization_event(key) for key in keys}
    return {key for key, event in events.items() if event and event.timestamp > after}


def test_materialize_the_models_from_the_shell(demo_run: DemoRun) -> None:
    models = {
        dg.AssetKey(["snowflake", "sophia", "analytics", name])
        for name in ("call_activity", "customer_360", "deal_pipeline", "source_freshness")
    }
    for command in (
        [str(BIN / "dagster"), "asset", "materialize", "-m", "sophia_dagster.definitions", "--select", ANALYTICS],
        [str(BIN / "dg"), "launch", "--assets", "group:analytics"],
    ):
        before = time.time()
        _run(command, demo_run.env)
        assert _materialized_since(demo_run.dagster_home, models, before) == models, command


def test_dg_checks_and_lists_the_definitions(demo_run: DemoRun) -> None:
    checked = _run([str(BIN / "dg"), "check", "defs"], demo_run.env)
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    listed = _run([str(BIN / "dg"), "list", "defs"], {**demo_run.env, "COLUMNS": "200"})
    for name in ("sophia_main", "estuary_activity_sensor", "snowflake", "source_postgres"):
        assert name in listed.stdout, name
    as_json = json.loads(_run([str(BIN / "dg"), "list", "defs", "--json"], demo_run.env).stdout)
    keys = {asset["asset_key"] for asset in as_json["assets"]}
    assert {"memory/hot/deal_pipeline", "snowflake/sophia/raw/deals", "estuary/sophia/postgres-cdc/deals"} <= keys


def test_dg_dev_serves_the_code_location(demo_run: DemoRun, tmp_path: Path) -> None:
    port = free_port()
    with serving([str(BIN / "dg"), "dev", "--port", str(port)], REPO, demo_run.env, port, tmp_path / "dg-dev.log"):
        pass  # serving() returns only once the webserver answers with its code location loaded


def test_sophia_config_show(demo_run: DemoRun) -> None:
    shown = _run([str(BIN / "sophia-config"), "show"], demo_run.env).stdout
    assert "ENVIRONMENT" in shown.upper() and "local" in shown
    assert str(demo_run.state_dir) in shown


def test_sophia_flow_commands(demo_run: DemoRun) -> None:
    flow = str(BIN / "sophia-flow")
    status = json.loads(_run([flow, "status"], demo_run.env).stdout)
    assert "sophia/postgres-cdc" in json.dumps(status)
    _run([flow, "stats"], demo_run.env)
    _run([flow, "pause", "sophia/postgres-cdc"], demo_run.env)
    _run([flow, "resume", "sophia/postgres-cdc"], demo_run.env)
    streaming = subprocess.Popen(
        [flow, "run"], cwd=REPO, env=demo_run.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    live = streaming.stderr.readline()  # the first live status line: it streams, its signal handlers are set
    streaming.send_signal(signal.SIGTERM)
    out, _ = streaming.communicate(timeout=60)
    assert live.strip() and streaming.returncode == 0, (live, out)
    report = json.loads(out[out.index("{") :])
    assert {"lsn", "lag_bytes", "rows"} <= set(report), out


def test_make_stop_stops_both_embedded_servers(make_state_dir: Callable[[str], Path]) -> None:
    state_dir = make_state_dir("stop")
    ensure_embedded_postgres(state_dir)
    warehouse = ensure_embedded_warehouse(state_dir)
    env = user_env(state_dir, make_state_dir("stop-home"))
    stopped = _run(["make", "-s", "stop"], env, timeout=120).stdout
    assert stopped.splitlines() == [
        f"embedded PostgreSQL ({state_dir / 'postgres'}): stopped",
        f"embedded warehouse ({state_dir / 'warehouse'}): stopped",
    ]
    assert not (state_dir / "postgres" / "postmaster.pid").exists()
    with pytest.raises(OSError):  # the server is our child here, so a zombie until reaped: ask its port instead
        socket.create_connection((warehouse.host, warehouse.port), timeout=2).close()
    again = _run(["make", "-s", "stop"], env, timeout=120).stdout
    assert again.count("not running") == 2

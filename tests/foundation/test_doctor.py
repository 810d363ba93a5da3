"""sophia-doctor: every service of the environment probed for real, one table, an exit code, no secret shown."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sophia_dagster.config import Settings
from sophia_dagster.doctor import DOWN, OFF, OK, check_environment, main
from sophia_dagster.warehouse.embedded import ensure_embedded_warehouse
from tests.fakes.estuary_server import FakeEstuary
from tests.fakes.http import JsonHandler, serving
from tests.fakes.pulumi_esc import running_fake_esc
from tests.memory.conftest import free_port, start_redis_server
from tests.readme import commands_under

PG_CANARY = "pg-canary-7d1f"
REDIS_CANARY = "redis-canary-93ab"
WEBHOOK_CANARY = "T000/B000/webhook-canary-51c2"
PAT_CANARY = "pat-canary-0e44"
ESC_CANARY = "esc-canary-a2b7"
CANARIES = (PG_CANARY, REDIS_CANARY, WEBHOOK_CANARY, PAT_CANARY, ESC_CANARY)
SYSTEM_PG = f"postgresql://postgres:{PG_CANARY}@127.0.0.1:5432/test"  # trust auth ignores the password


class Webhook(JsonHandler):
    """Answers HEAD like Slack's webhook endpoint: it exists, but only POST with a payload is accepted."""

    def do_HEAD(self) -> None:
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()


def rows(table: str) -> dict[str, list[str]]:
    """The report's table as service -> cells (split on runs of two spaces)."""
    parsed = {}
    for line in table.splitlines()[1:]:
        cells = [cell.strip() for cell in line.split("  ") if cell.strip()]
        if cells and cells[0] in ("postgresql", "redis", "warehouse", "estuary", "pulumi esc", "webhook"):
            parsed[cells[0]] = cells
    return parsed


def assert_no_secret(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text


@pytest.fixture(scope="module")
def local_state_dir(make_state_dir: Callable[[str], Path]) -> Path:
    """One embedded warehouse for the local checks of this module."""
    return make_state_dir("doctor-local")


@pytest.fixture
def local_env(local_state_dir: Path) -> dict[str, str]:
    """A process environment for `local` on the machine's PostgreSQL and an embedded warehouse."""
    keep = {k: v for k, v in os.environ.items() if not k.upper().startswith(("SNOWFLAKE", "ESTUARY", "PULUMI"))}
    return {**keep, "ENVIRONMENT": "local", "STATE_DIR": str(local_state_dir), "POSTGRES_DSN": SYSTEM_PG}


def run_doctor(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """The README's command, as an operator runs it."""
    (command,) = commands_under("Checking the environment (`sophia-doctor`)")
    argv = [str(Path(sys.executable).parent / Path(command[0]).name), *command[1:]]
    return subprocess.run(argv, check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def run_main(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cwd: Path) -> tuple[int, str, str]:
    """`main()` in this process (cheaper than a new interpreter) with exactly `env` as the environment."""
    monkeypatch.chdir(cwd)
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--timeout", "3"])
    return code, out.getvalue(), err.getvalue()


def test_local_with_redis_stopped_runs_degraded(local_env: dict[str, str], tmp_path: Path) -> None:
    redis = start_redis_server()
    port = redis.url.rsplit(":", 1)[1].split("/")[0]
    redis.kill()
    env = {**local_env, "REDIS_URL": f"redis://:{REDIS_CANARY}@127.0.0.1:{port}/0"}
    done = run_doctor(env, tmp_path)
    print(done.stdout)
    table = rows(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert table["redis"][1] == DOWN and "ConnectionError" in table["redis"][3]
    assert "memory L1 cache skipped" in table["redis"][4]
    assert table["postgresql"][1] == OK and "POSTGRES_DSN 127.0.0.1:5432" in table["postgresql"][3]
    assert table["warehouse"][1] == OK and table["estuary"][1] == OFF
    assert done.stdout.strip().endswith("ENVIRONMENT=local can run (degraded: redis down)")
    assert_no_secret(done.stdout + done.stderr)


def test_local_without_its_database_cannot_run(
    local_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {**local_env, "POSTGRES_DSN": f"postgresql://postgres:{PG_CANARY}@127.0.0.1:{free_port()}/test"}
    code, out, err = run_main(env, monkeypatch, tmp_path)
    assert code == 1
    assert rows(out)["postgresql"][1] == DOWN
    assert "ENVIRONMENT=local cannot run: postgresql down" in out
    assert_no_secret(out + err)


def test_a_configuration_error_is_one_line_and_exit_2(
    local_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = run_main({**local_env, "ENVIRONMENT": "prod"}, monkeypatch, tmp_path)
    assert code == 2 and out == ""
    assert err.startswith("error: invalid configuration:") and len(err.splitlines()) == 1
    assert "SNOWFLAKE_ACCOUNT" in err and PG_CANARY not in err


@pytest.fixture
def prod(redis_url: str, local_state_dir: Path) -> Iterator[Callable[..., Settings]]:
    """Settings for prod whose every service is local: PostgreSQL, Redis, ESC and a webhook fakes, Estuary's fake."""
    with running_fake_esc(ESC_CANARY) as esc, serving(Webhook) as webhook_port, FakeEstuary() as estuary:
        esc.environments["acme/sophia/prod"] = {"environmentVariables": {"SNOWFLAKE_ROLE": "SOPHIA_ROLE"}}
        urls = estuary.urls()

        def make(**overrides: str) -> Settings:
            values = {
                "environment": "prod",
                "state_dir": local_state_dir,
                "postgres_dsn": SYSTEM_PG,
                "redis_url": redis_url,
                "snowflake_account": "acme-xy12345",
                "snowflake_user": "SOPHIA_DAGSTER",
                "snowflake_pat": PAT_CANARY,
                "estuary_api_token": estuary.issue_refresh_token(),
                "estuary_pg_url": urls["pg_url"],
                "estuary_agent_url": urls["agent_url"],
                "estuary_encryption_url": urls["encryption_url"],
                "estuary_anon_key": urls["anon_key"],
                "pulumi_org": "acme",
                "pulumi_environment": "prod",
                "pulumi_access_token": ESC_CANARY,
                "pulumi_api_url": esc.url,
                "alert_webhook_url": f"http://127.0.0.1:{webhook_port}/services/{WEBHOOK_CANARY}",
            }
            return Settings(**{**values, **overrides})

        yield make


def snowflake_args(state_dir: Path) -> dict[str, object]:
    """The embedded warehouse's endpoint standing in for Snowflake's cloud (it accepts the login)."""
    endpoint = ensure_embedded_warehouse(state_dir)
    return {
        "host": "127.0.0.1",
        "port": endpoint.port,
        "protocol": "http",
        "login_timeout": 10,
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    }


def test_prod_with_every_service_up_can_run(prod: Callable[..., Settings]) -> None:
    settings = prod()
    report = check_environment(settings, timeout=3, warehouse_args=snowflake_args(settings.state_dir))
    statuses = {check.service: check.status for check in report.checks}
    assert statuses == dict.fromkeys(("postgresql", "redis", "warehouse", "estuary", "pulumi esc", "webhook"), OK)
    assert report.can_run and report.verdict() == "ENVIRONMENT=prod can run"
    assert "answered HTTP 405" in rows(report.render())["webhook"][3]
    assert_no_secret(report.render())


def test_prod_with_estuary_unreachable_cannot_run(prod: Callable[..., Settings]) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    settings = prod(estuary_pg_url=f"{closed}/rest/v1", estuary_agent_url=closed)
    report = check_environment(settings, timeout=3, warehouse_args=snowflake_args(settings.state_dir))
    text = report.render()
    print(text)
    estuary = rows(text)["estuary"]
    assert estuary[1] == DOWN and "ConnectError" in estuary[3]
    assert not report.can_run and report.verdict() == "ENVIRONMENT=prod cannot run: estuary down"
    assert {c.service for c in report.checks if c.status == OK} == {
        "postgresql",
        "redis",
        "warehouse",
        "pulumi esc",
        "webhook",
    }
    assert_no_secret(text)


def test_a_bad_estuary_token_is_down_without_showing_it(prod: Callable[..., Settings]) -> None:
    settings = prod(estuary_api_token="not-a-refresh-token-canary")
    report = check_environment(settings, timeout=3, warehouse_args=snowflake_args(settings.state_dir))
    estuary = next(check for check in report.checks if check.service == "estuary")
    assert estuary.status == DOWN and not report.can_run
    assert "not-a-refresh-token-canary" not in report.render()

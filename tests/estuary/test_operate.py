"""`sophia-estuary`, the README's operator commands, in prod against the fake control plane."""

import contextlib
import io
import os

import pytest

from sophia_dagster.config import get_settings
from sophia_dagster.operate import main
from tests.estuary.conftest import CANARY
from tests.fakes.estuary_server import FakeEstuary
from tests.readme import commands_under

PG = "sophia/postgres-cdc"


@pytest.fixture
def prod_env(fake: FakeEstuary, platform_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """ENVIRONMENT=prod with Estuary's endpoints on the fake; settings re-read for this test."""
    monkeypatch.chdir(tmp_path)
    inherited = [k for k in os.environ if k.upper().startswith(("ESTUARY", "PULUMI", "FLOW_AUTH"))]
    for key in set(inherited) - set(platform_env):
        monkeypatch.delenv(key)
    urls = fake.urls()
    values = {
        "ENVIRONMENT": "prod",
        "SNOWFLAKE_USER": "SOPHIA_DAGSTER",
        "SNOWFLAKE_PAT": f"pat-{CANARY}",
        "ESTUARY_API_TOKEN": fake.issue_refresh_token(),
        "ESTUARY_PG_URL": urls["pg_url"],
        "ESTUARY_AGENT_URL": urls["agent_url"],
        "ESTUARY_ENCRYPTION_URL": urls["encryption_url"],
        "ESTUARY_ANON_KEY": urls["anon_key"],
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def readme(heading: str) -> list[list[str]]:
    """The README's `sophia-estuary` commands of a section, as argv without the program."""
    return [argv[1:] for argv in commands_under(heading) if argv[0].endswith("/sophia-estuary")]


def test_the_readmes_upgrade_steps_dry_run_then_publish(fake: FakeEstuary, prod_env: None) -> None:
    dry_run, publish = readme("Upgrading the catalog safely")
    code, out, err = run(*dry_run)
    assert code == 0, err
    assert out.startswith("dry run ") and ": success (" in out and PG in out and "sophia/snowflake" in out
    assert fake.live == {}
    assert [p.dry_run for p in fake.publications.values()] == [True]
    code, out, err = run(*publish)
    assert code == 0, err
    assert out.startswith("published ") and PG in fake.live and "sophia/snowflake" in fake.live
    assert CANARY not in out + err


def test_a_dry_run_that_fails_names_estuarys_error(fake: FakeEstuary, prod_env: None) -> None:
    fake.fail_builds_with("connector validation failed: {name} cannot reach the database")
    code, out, err = run("publish", "--dry-run", PG)
    assert code == 1 and out == ""
    first, *errors = err.splitlines()  # one line, then one per build error Estuary reported
    assert first.startswith("error: Estuary publication") and first.endswith("ended buildFailed")
    assert errors == [f"  flow://capture/{PG}: connector validation failed:  cannot reach the database"]
    assert fake.live == {}


def test_the_readmes_pause_status_resume(fake: FakeEstuary, prod_env: None) -> None:
    pause, status, resume = readme("Pausing a pipeline")
    assert run("publish", PG)[0] == 0
    code, out, _ = run(*pause)
    assert code == 0 and out.startswith(f"paused {PG} (")
    assert fake.live[PG]["spec"]["shards"]["disable"] is True
    assert run(*status)[1].startswith(f"{PG}: ") and "(disabled)" in run(*status)[1]
    assert run(*resume)[1].startswith(f"resumed {PG} (")
    assert fake.live[PG]["spec"]["shards"].get("disable") is False

"""A canary secret in the catalog's placeholders never shows up in events, logs, metadata, errors or files."""

import json
import logging
from pathlib import Path

import dagster as dg
import pytest

from sophia_dagster.config import PLATFORM_CATALOG_DIR
from sophia_dagster.estuary.assets import build_estuary_assets
from sophia_dagster.estuary.catalog import load_catalog
from sophia_dagster.estuary.errors import EstuaryAPIError, PublicationFailedError
from sophia_dagster.estuary.workspace import EstuaryWorkspace
from tests.estuary.conftest import CANARY
from tests.fakes.estuary_server import FakeEstuary

REPO = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".venv", ".git", "__pycache__", ".pytest_cache", ".hypothesis", "node_modules"}


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every readable file under ``root`` (skipping virtualenvs and VCS data) whose bytes contain ``needle``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not SKIP_DIRS & set(path.relative_to(root).parts):
            try:
                if needle.encode() in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def test_the_canary_never_leaks(
    fake: FakeEstuary,
    workspace: EstuaryWorkspace,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path))
    tasks = [a for a in build_estuary_assets(load_catalog(PLATFORM_CATALOG_DIR)) if isinstance(a, dg.AssetsDefinition)]
    fake.fail_next("503", path="/encrypt-config")  # a retry warning gets logged
    ok = dg.materialize(tasks, resources={"estuary": workspace}, instance=instance)
    assert ok.success and CANARY in json.dumps(fake.plaintext_configs)  # the secret really was used

    fake.fail_builds_with("connection refused for {user}: password {credentials_password} rejected")
    failed = dg.materialize(tasks, resources={"estuary": workspace}, instance=instance, raise_on_error=False)
    assert not failed.success
    with pytest.raises(PublicationFailedError) as caught:
        workspace.publish(["sophia/postgres-cdc"])
    assert "password *** rejected" in str(caught.value)  # Estuary echoed it; we redacted it

    records = [r for run in (ok, failed) for r in instance.all_logs(run.run_id)]
    assert any(r.dagster_event and r.dagster_event.event_type_value == "STEP_FAILURE" for r in records)
    event_log = "\n".join(dg.serialize_value(r) for r in records)
    assert "password *** rejected" in event_log
    out, err = capfd.readouterr()
    for text in (event_log, caplog.text, out, err, str(caught.value), repr(caught.value.errors)):
        assert CANARY not in text
    assert files_containing(tmp_path, CANARY) == []  # event log database, compute logs, run storage
    assert files_containing(REPO, CANARY) == []


def test_tokens_are_redacted_even_when_a_server_quotes_them(fake: FakeEstuary, workspace: EstuaryWorkspace) -> None:
    fake.add_live("acme/src", "capture", {"endpoint": {}})
    fake.fail_next("echo-auth", path="/catalog/status")
    with pytest.raises(EstuaryAPIError) as caught:
        workspace.status(["acme/src"])
    jwt = next(r.headers["authorization"] for r in fake.requests if r.path.endswith("/catalog/status"))
    assert jwt.removeprefix("Bearer ") not in str(caught.value) and "credential Bearer *** rejected" in str(
        caught.value
    )
    assert workspace.api_token not in repr(workspace) and workspace.api_token not in str(workspace)

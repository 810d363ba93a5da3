"""Publishing, pause/resume, status and stats against the fake control plane."""

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from sophia_dagster.estuary.catalog import CatalogError
from sophia_dagster.estuary.errors import ConcurrentChangeError, EstuaryAPIError, PublicationFailedError
from sophia_dagster.estuary.publication import ZERO_PUB_ID, DraftSpec
from sophia_dagster.estuary.workspace import EstuaryWorkspace
from tests.estuary.conftest import CANARY, make_workspace
from tests.fakes.estuary_server import CLIENT_ERRORS, FakeEstuary

PG, SNOW = "sophia/postgres-cdc", "sophia/snowflake"


def staged(fake: FakeEstuary) -> list[dict]:
    """Every draft spec row the client posted."""
    return [row for r in fake.requests if r.path.endswith("/draft_specs") for row in json.loads(r.body)]


def test_publish_new_specs_creates_them_with_zero_expect_pub_id(fake: FakeEstuary, workspace: EstuaryWorkspace) -> None:
    result = workspace.publish([PG])
    assert result.status == "success" and not result.dry_run
    assert sorted(fake.live) == [
        PG,
        *(f"{PG}/{t}" for t in ("calls", "companies", "contacts", "conversations", "deals")),
    ]
    assert {row["expect_pub_id"] for row in staged(fake)} == {ZERO_PUB_ID}
    assert all(fake.live[n]["last_pub_id"] == result.pub_id for n in fake.live)
    assert fake.drafts == {}  # Estuary deleted the draft on success


def test_publish_resolves_placeholders_and_encrypts_before_staging(
    fake: FakeEstuary, workspace: EstuaryWorkspace
) -> None:
    workspace.publish([PG])
    (plaintext,) = fake.plaintext_configs
    assert plaintext["address"] == "db.sophia.internal:5432" and plaintext["credentials"]["password"] == CANARY
    (capture,) = [row for row in staged(fake) if row["catalog_name"] == PG]
    config = capture["spec"]["endpoint"]["connector"]["config"]
    assert "sops" in config and CANARY not in json.dumps(capture)
    assert fake.count("GET", "/connector_tags") == 1


def test_publish_updated_spec_uses_live_pub_id_and_skips_encrypted_configs(
    fake: FakeEstuary, workspace: EstuaryWorkspace
) -> None:
    first = workspace.publish([PG])
    fake.requests.clear()
    second = workspace.publish([PG])
    assert second.pub_id > first.pub_id
    assert {row["expect_pub_id"] for row in staged(fake)} == {first.pub_id}
    assert fake.live[PG]["last_pub_id"] == second.pub_id


def test_concurrent_change_is_reported_and_nothing_is_overwritten(
    fake: FakeEstuary, workspace: EstuaryWorkspace
) -> None:
    workspace.publish([PG])
    fake.concurrent_change = PG  # someone publishes PG between our read and our publication
    with pytest.raises(ConcurrentChangeError) as caught:
        workspace.publish([PG])
    assert caught.value.status == "buildFailed"
    assert "concurrent change" in str(caught.value) and "expected publication ID" in str(caught.value)
    assert fake.live[PG]["spec"]["changedBy"] == "someone else"
    assert fake.drafts == {} and fake.count("DELETE", "/drafts") == 1


def test_expect_pub_id_mismatch_status_is_a_concurrent_change(fake: FakeEstuary, workspace: EstuaryWorkspace) -> None:
    workspace.publish([PG])
    fake.mismatch_status, fake.concurrent_change = "expectPubIdMismatch", PG
    with pytest.raises(ConcurrentChangeError) as caught:
        workspace.publish([PG])
    assert caught.value.status == "expectPubIdMismatch"
    assert [e.scope for e in caught.value.errors] == [PG]
    assert fake.live[PG]["spec"]["changedBy"] == "someone else" and fake.drafts == {}


def test_build_failure_raises_estuary_errors_and_deletes_the_draft(
    fake: FakeEstuary, workspace: EstuaryWorkspace
) -> None:
    spec = {
        "endpoint": {"connector": {"image": "ghcr.io/estuary/materialize-snowflake:v4", "config": {"host": "h"}}},
        "bindings": [{"resource": {"table": "t"}, "source": "acme/never-published"}],
    }
    with pytest.raises(PublicationFailedError) as caught:
        workspace.client.publish([DraftSpec("acme/wh", "materialization", spec, ZERO_PUB_ID)], detail="acme")
    assert not isinstance(caught.value, ConcurrentChangeError)
    assert caught.value.status == "buildFailed"
    assert [e.detail for e in caught.value.errors] == ["collection acme/never-published is not defined"]
    assert fake.drafts == {} and "acme/wh" not in fake.live


def test_failed_publication_deletes_its_draft_even_when_its_errors_cannot_be_read(
    fake: FakeEstuary, workspace: EstuaryWorkspace
) -> None:
    spec = {"bindings": [{"resource": {"table": "t"}, "source": "acme/never-published"}]}
    fake.fail_next("403", path="/draft_errors")
    with pytest.raises(EstuaryAPIError) as caught:
        workspace.client.publish([DraftSpec("acme/wh", "materialization", spec, ZERO_PUB_ID)], detail="acme")
    assert caught.value.status == 403 and caught.value.path.endswith("/draft_errors")
    assert fake.drafts == {} and fake.count("DELETE", "/rest/v1/drafts") == 1


def test_dry_run_changes_nothing(fake: FakeEstuary, workspace: EstuaryWorkspace) -> None:
    result = workspace.publish(dry_run=True)
    assert result.dry_run and result.status == "success"
    assert fake.live == {} and fake.drafts == {}
    assert (
        json.loads(next(r.body for r in fake.requests if r.path.endswith("/publications") and r.method == "POST"))[
            "dry_run"
        ]
        is True
    )


@pytest.mark.parametrize("status", ["400", "403", "404"])
def test_postgrest_client_errors_fail_the_publish_after_one_request(
    fake: FakeEstuary, workspace: EstuaryWorkspace, status: str
) -> None:
    fake.fail_next(status, path="/drafts")
    with pytest.raises(EstuaryAPIError) as caught:
        workspace.publish([PG])
    assert fake.count("POST", "/rest/v1/drafts") == 1 and fake.count(path="/publications") == 0
    assert caught.value.status == int(status) and caught.value.code == CLIENT_ERRORS[status]["code"]
    assert str(caught.value).startswith(f"Estuary POST /rest/v1/drafts failed (HTTP {status})")
    assert CLIENT_ERRORS[status]["message"] in str(caught.value)


def test_missing_placeholder_variable_fails_before_any_write(
    fake: FakeEstuary, workspace: EstuaryWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ESTUARY_SNOWFLAKE_PRIVATE_KEY")
    with pytest.raises(CatalogError) as caught:
        workspace.publish([SNOW])
    message = str(caught.value)
    assert "ESTUARY_SNOWFLAKE_PRIVATE_KEY is not set" in message and "snowflake.flow.yaml" in message
    assert "materializations.sophia/snowflake.endpoint.connector.config.credentials.private_key" in message
    assert fake.count("POST") == 1 and fake.count(path="generate_access_token") == 1  # only the token exchange


def test_pause_resume_round_trip(fake: FakeEstuary, workspace: EstuaryWorkspace) -> None:
    published = workspace.publish()
    paused = workspace.pause(PG)
    assert fake.live[PG]["spec"]["shards"]["disable"] is True
    assert [(s.status, s.disabled) for s in workspace.status([PG])] == [("taskDisabled", True)]
    resumed = workspace.resume(PG)
    assert fake.live[PG]["spec"]["shards"]["disable"] is False
    assert [(s.status, s.disabled) for s in workspace.status([PG])] == [("ok", False)]
    assert published.pub_id < paused.pub_id < resumed.pub_id
    assert [row["expect_pub_id"] for row in staged(fake)[-2:]] == [published.pub_id, paused.pub_id]
    assert fake.live[PG]["spec"]["endpoint"]["connector"]["config"]["sops"]  # still the encrypted config
    assert fake.count("POST", "/encrypt-config") == 3  # only the first publication encrypted


def seed_tasks(fake: FakeEstuary, n: int) -> list[str]:
    names = [f"acme/task-{i:04d}" for i in range(n)]
    for name in names:
        fake.add_live(name, "capture", {"endpoint": {}, "bindings": []})
    return names


def test_status_and_stats_are_batched_by_100_and_keep_order(fake: FakeEstuary, workspace: EstuaryWorkspace) -> None:
    names = seed_tasks(fake, 250)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for i, name in enumerate(names):
        fake.add_stats(name, hour, bindings={f"{name}/c": (i + 1, 10 * (i + 1))}, docs_written_by_me=i + 1)
    fake.set_status(names[7], "warning", "connector is retrying")
    statuses = workspace.status(list(reversed(names)))
    assert [s.catalog_name for s in statuses] == list(reversed(names))
    assert statuses[-8].status == "warning" and statuses[-8].message == "connector is retrying"
    rows = workspace.stats(names, since=hour + timedelta(minutes=30))
    assert len(rows) == 250 and sum(r.docs_written_by_me for r in rows) == 250 * 251 // 2
    assert rows[3].bindings[f"{names[3]}/c"].bytes == 40
    assert fake.count("GET", "/api/v1/catalog/status") == math.ceil(250 / 100)
    assert fake.count("GET", "/catalog_stats_hourly") == math.ceil(250 / 100)


def test_stats_pages_with_range_until_a_short_page(fake: FakeEstuary, workspace: EstuaryWorkspace) -> None:
    names = seed_tasks(fake, 50)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=29)
    for name in names:
        for hour in range(30):
            fake.add_stats(name, start + timedelta(hours=hour), docs_written_by_me=1)
    rows = workspace.stats(names, since=start)
    assert len(rows) == 1500 and len({(r.catalog_name, r.ts) for r in rows}) == 1500
    ranges = [r.headers["range"] for r in fake.requests if r.path.endswith("/catalog_stats_hourly")]
    assert ranges == ["0-999", "1000-1999"]
    assert len(workspace.stats(names, since=start + timedelta(hours=29, minutes=59))) == 50


def test_live_specs_are_read_in_batches_of_25(fake: FakeEstuary, workspace: EstuaryWorkspace) -> None:
    names = seed_tasks(fake, 60)
    live = workspace.client.live_specs([*names, "acme/not-there"])
    assert sorted(s.catalog_name for s in live) == names
    assert fake.count("GET", "/live_specs_ext") == 3


def test_every_operation_completes_under_30_percent_transient_faults(
    fake: FakeEstuary, platform_env: dict[str, str]
) -> None:
    fake.random_faults(0.3, seed=7)
    workspace = make_workspace(fake, max_attempts=12)
    published = workspace.publish()
    assert sorted(fake.live) == sorted([*workspace.load_catalog().collections, *workspace.load_catalog().tasks])
    workspace.pause(PG)
    assert workspace.status([PG])[0].status == "taskDisabled"
    workspace.resume(PG)
    assert [s.status for s in workspace.status([PG, SNOW, "sophia/hubspot"])] == ["ok", "ok", "ok"]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    fake.add_stats(SNOW, hour, bindings={f"{PG}/deals": (3, 300)})
    assert [r.bindings[f"{PG}/deals"].docs for r in workspace.stats([SNOW], since=hour)] == [3]
    failed = [r for r in fake.requests if r.status in (-1, 429, 500, 503)]
    assert len(failed) >= 8, "the fault injection did not fire"
    assert len(fake.publications) == 3 and fake.live[PG]["last_pub_id"] > published.pub_id


def test_a_lost_publication_answer_is_recovered_not_published_twice(
    fake: FakeEstuary, platform_env: dict[str, str]
) -> None:
    workspace = make_workspace(fake, request_timeout_seconds=0.3)
    fake.slow_seconds = 0.8
    fake.fail_next("slow", path="/publications")  # Estuary creates it, but the answer never arrives in time
    result = workspace.publish([PG])
    assert len(fake.publications) == 1 and result.pub_id in fake.publications
    assert fake.count("POST", "/publications") == 1
    assert fake.live[PG]["last_pub_id"] == result.pub_id


def test_a_lost_draft_answer_is_recovered_not_created_twice(fake: FakeEstuary, platform_env: dict[str, str]) -> None:
    workspace = make_workspace(fake, request_timeout_seconds=0.3)
    fake.slow_seconds = 0.8
    fake.fail_next("slow", path="/drafts")  # Estuary creates the draft, but the answer never arrives in time
    workspace.publish([PG])
    assert fake.count("POST", "/rest/v1/drafts") == 1 and fake.count("GET", "/rest/v1/drafts") == 1
    assert fake.drafts == {}, "a second, orphaned draft was left behind"


def test_an_unknown_stats_grain_is_refused_before_any_request(fake: FakeEstuary, workspace: EstuaryWorkspace) -> None:
    with pytest.raises(ValueError, match="'weekly' is not one of hourly, daily, monthly"):
        workspace.client.stats([PG], since=datetime.now(UTC), grain="weekly")
    assert fake.count(path="/catalog_stats") == 0

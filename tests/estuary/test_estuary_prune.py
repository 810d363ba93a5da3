"""Items 2 and 6: unchanged specs are not published again, and a conflict names only the specs that moved."""

import json
import shutil
from pathlib import Path

import pytest

from sophia_dagster.config import PLATFORM_CATALOG_DIR
from sophia_dagster.estuary.errors import ConcurrentChangeError
from sophia_dagster.estuary.workspace import EstuaryWorkspace
from tests.estuary.conftest import make_workspace
from tests.fakes.estuary_server import FakeEstuary

PG, HUB, SNOW = "sophia/postgres-cdc", "sophia/hubspot", "sophia/snowflake"


def staged_names(fake: FakeEstuary) -> list[str]:
    """Catalog names of every draft spec posted, in order."""
    return [row["catalog_name"] for r in fake.requests if r.path.endswith("/draft_specs") for row in json.loads(r.body)]


def platform_copy(tmp_path: Path) -> Path:
    """A copy of the platform catalog that a test may edit."""
    return Path(shutil.copytree(PLATFORM_CATALOG_DIR, tmp_path / "catalog", ignore=shutil.ignore_patterns("*.py")))


def test_publishing_the_platform_catalog_twice_publishes_once(fake: FakeEstuary, workspace: EstuaryWorkspace) -> None:
    first = workspace.publish()
    assert first.status == "success" and fake.publications_made() == 1
    fake.requests.clear()
    second = workspace.publish()
    assert fake.publications_made() == 0 and fake.count("POST", "/drafts") == 0 and staged_names(fake) == []
    assert fake.count("POST", "/encrypt-config") == 0
    assert second.status == "unchanged" and second.pub_id == first.pub_id
    assert "unchanged, nothing published" in second.summary and first.pub_id in second.summary
    assert sorted(second.unchanged) == sorted(fake.live)


def test_a_task_whose_collections_are_live_publishes_only_itself(
    fake: FakeEstuary, workspace: EstuaryWorkspace
) -> None:
    workspace.publish([PG, HUB])
    fake.requests.clear()
    result = workspace.publish([SNOW])
    assert staged_names(fake) == [SNOW]
    assert result.status == "success" and len(result.unchanged) == 9
    assert fake.count("POST", "/rpc/prune_unchanged_draft_specs") == 1


def test_a_changed_collection_is_published_with_nothing_else(
    fake: FakeEstuary, platform_env: dict[str, str], tmp_path: Path
) -> None:
    catalog = platform_copy(tmp_path)
    workspace = make_workspace(fake, catalog)
    workspace.publish([PG])
    flow = catalog / "postgres-cdc.flow.yaml"
    flow.write_text(flow.read_text().replace('description: "public.deals', 'description: "Deals, public.deals', 1))
    fake.requests.clear()
    result = workspace.publish([PG])
    assert staged_names(fake) == [f"{PG}/deals"] and result.status == "success"
    assert fake.live[f"{PG}/deals"]["last_pub_id"] == result.pub_id != fake.live[PG]["last_pub_id"]


def test_estuary_prunes_what_it_finds_unchanged(
    fake: FakeEstuary, platform_env: dict[str, str], tmp_path: Path
) -> None:
    """A collection reading an inferred schema is always staged (it may change in Estuary): Estuary decides."""
    catalog = platform_copy(tmp_path)
    flow = catalog / "hubspot.flow.yaml"
    text = flow.read_text()
    start = text.index("  sophia/hubspot/contacts:")
    block = text[start:].split("\n  sophia/hubspot/", 2)[0]
    schema_start = block.index("    schema:")
    inferred = block[:schema_start] + "    writeSchema:" + block[schema_start + len("    schema:") :]
    inferred += "\n    readSchema: {$ref: flow://inferred-schema}\n"
    flow.write_text(text.replace(block, inferred.rstrip("\n")))
    workspace = make_workspace(fake, catalog)
    workspace.publish([HUB])
    fake.requests.clear()
    result = workspace.publish([HUB])
    assert staged_names(fake) == ["sophia/hubspot/contacts"]
    assert fake.count("POST", "/rpc/prune_unchanged_draft_specs") == 1
    assert fake.publications_made() == 0 and fake.drafts == {} and result.status == "unchanged"


def test_a_conflict_names_only_the_specs_whose_pub_id_moved(
    fake: FakeEstuary, platform_env: dict[str, str], tmp_path: Path
) -> None:
    catalog = platform_copy(tmp_path)
    workspace = make_workspace(fake, catalog)
    workspace.publish([PG])
    flow = catalog / "postgres-cdc.flow.yaml"
    flow.write_text(
        flow.read_text().replace("slotName: flow_slot", "slotName: flow_slot_2").replace('"public.deals', '"Deals', 1)
    )
    fake.concurrent_change = PG
    with pytest.raises(ConcurrentChangeError) as caught:
        workspace.publish([PG])
    assert sorted(staged_names(fake)[-2:]) == sorted([PG, f"{PG}/deals"])
    assert caught.value.names == [PG]
    assert f"concurrent change: {PG} changed in Estuary" in str(caught.value)

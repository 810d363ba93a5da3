"""Item 3: a publish keeps what operators changed live (a pause) and says what it changes, secrets masked."""

import json
import shutil
from pathlib import Path

import dagster as dg

from sophia_dagster.config import PLATFORM_CATALOG_DIR
from sophia_dagster.estuary.assets import build_estuary_assets
from sophia_dagster.estuary.catalog import load_catalog
from sophia_dagster.estuary.workspace import EstuaryWorkspace
from tests.estuary.conftest import CANARY, make_workspace
from tests.fakes.estuary_server import FakeEstuary

PG, SNOW = "sophia/postgres-cdc", "sophia/snowflake"


def task_asset(catalog_dir: Path, op_name: str) -> dg.AssetsDefinition:
    return next(
        a
        for a in build_estuary_assets(catalog=load_catalog(catalog_dir))
        if isinstance(a, dg.AssetsDefinition) and a.node_def.name == op_name
    )


def platform_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(PLATFORM_CATALOG_DIR, tmp_path / "catalog", ignore=shutil.ignore_patterns("*.py")))


def test_a_paused_task_stays_paused_after_a_materialization(fake: FakeEstuary, workspace: EstuaryWorkspace) -> None:
    workspace.publish()
    fake.pause_live(SNOW)
    result = dg.materialize(
        [task_asset(PLATFORM_CATALOG_DIR, "estuary_sophia_snowflake")], resources={"estuary": workspace}
    )
    assert result.success
    assert fake.live[SNOW]["spec"]["shards"]["disable"] is True
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["estuary/status"].value == "taskDisabled"
    assert metadata["estuary/publication"].value.startswith("unchanged, nothing published")


def test_a_changed_catalog_is_published_and_the_pause_is_kept(
    fake: FakeEstuary, platform_env: dict[str, str], tmp_path: Path
) -> None:
    catalog = platform_copy(tmp_path)
    workspace = make_workspace(fake, catalog)
    workspace.publish([PG])
    paused_at = fake.pause_live(PG)
    flow = catalog / "postgres-cdc.flow.yaml"
    flow.write_text(flow.read_text().replace("slotName: flow_slot", "slotName: flow_slot_2"))
    instance = dg.DagsterInstance.ephemeral()
    asset = task_asset(catalog, "estuary_sophia_postgres_cdc")
    result = dg.materialize([asset], resources={"estuary": workspace}, instance=instance)
    live = fake.live[PG]
    assert live["last_pub_id"] != paused_at and live["spec"]["shards"]["disable"] is True
    assert fake.plaintext_configs[-1]["advanced"]["slotName"] == "flow_slot_2"
    changes = result.get_asset_materialization_events()[0].materialization.metadata["estuary/changes"].value
    assert "~ endpoint.connector.config.advanced.slotName" in changes
    assert "shards.disable" not in changes  # kept, so not a change
    logged = "\n".join(entry.user_message for entry in instance.all_logs(result.run_id))
    assert "slotName" in logged
    assert CANARY not in changes and CANARY not in logged


def test_a_catalog_that_sets_disable_decides(fake: FakeEstuary, platform_env: dict[str, str], tmp_path: Path) -> None:
    catalog = platform_copy(tmp_path)
    workspace = make_workspace(fake, catalog)
    workspace.publish([PG])
    fake.pause_live(PG)
    flow = catalog / "postgres-cdc.flow.yaml"
    flow.write_text(flow.read_text().replace("    bindings:\n", "    shards: {disable: false}\n    bindings:\n", 1))
    result = workspace.publish([PG])
    assert fake.live[PG]["spec"]["shards"]["disable"] is False
    assert result.changes[PG] == ["~ shards.disable: true -> false"]


def test_the_diff_masks_secrets(fake: FakeEstuary, platform_env: dict[str, str], tmp_path: Path, monkeypatch) -> None:
    catalog = platform_copy(tmp_path)
    workspace = make_workspace(fake, catalog)
    workspace.publish([PG])
    monkeypatch.setenv("POSTGRES_CAPTURE_PASSWORD", f"rotated-{CANARY}")
    result = make_workspace(fake, catalog).publish([PG])
    text = json.dumps(result.changes)
    assert "credentials.password: <encrypted> -> ****" in text
    assert CANARY not in text and result.status == "success"

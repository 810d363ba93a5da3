"""The catalog as Dagster assets: graph, specs, translator overrides, materialization and failures."""

import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from sophia_dagster.defs.estuary.platform import estuary_definitions
from sophia_dagster.estuary.assets import build_estuary_assets
from sophia_dagster.estuary.catalog import load_catalog
from sophia_dagster.estuary.resource import EstuaryWorkspace
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator, EstuaryBinding
from tests.estuary.conftest import make_workspace
from tests.fakes.estuary_server import FakeEstuary

REPO = Path(__file__).resolve().parents[2]
DEALS = dg.AssetKey(["estuary", "sophia", "postgres-cdc", "deals"])
RAW_DEALS = dg.AssetKey(["snowflake", "sophia", "raw", "deals"])


def platform_graph() -> dg.Definitions:
    return dg.Definitions.merge(
        estuary_definitions(), dg.Definitions(resources={"estuary": EstuaryWorkspace(api_token="unused")})
    )


def test_the_platform_graph_from_the_catalog() -> None:
    defs = platform_graph()
    dg.Definitions.validate_loadable(defs)
    graph = defs.get_repository_def().asset_graph
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert len(keys) == 5 + 4 + 9 + 9
    assert {
        "postgres/public/deals",
        "hubspot/contacts",
        "estuary/sophia/hubspot/engagements",
        "snowflake/sophia/raw/hubspot_engagements",
    } <= keys
    assert graph.get(DEALS).parent_keys == {dg.AssetKey(["postgres", "public", "deals"])}
    assert graph.get(RAW_DEALS).parent_keys == {DEALS}
    assert not graph.get(dg.AssetKey(["postgres", "public", "deals"])).is_materializable
    assert (
        graph.get(DEALS).group_name == "sophia_postgres_cdc" and graph.get(RAW_DEALS).group_name == "sophia_snowflake"
    )
    assert graph.get(DEALS).kinds == {"estuary", "postgres"} and graph.get(RAW_DEALS).kinds == {"estuary", "snowflake"}
    assert graph.get(dg.AssetKey(["hubspot", "deals"])).kinds == {"hubspot"}
    assert len(graph.asset_check_keys) == 18


def test_specs_carry_schema_owners_and_metadata() -> None:
    specs = {
        s.key: s
        for a in build_estuary_assets(load_catalog())
        for s in (a.specs if isinstance(a, dg.AssetsDefinition) else [a])
    }
    deals = specs[DEALS]
    columns = {c.name: c for c in deals.metadata["dagster/column_schema"].columns}
    assert list(columns)[:3] == ["id", "company_id", "contact_id"]
    assert (columns["id"].type, columns["id"].constraints.unique, columns["id"].constraints.nullable) == (
        "integer",
        True,
        False,
    )
    assert (columns["amount"].type, columns["amount"].constraints.nullable) == ("numeric", True)
    assert columns["close_date"].type == "date" and columns["created_at"].type == "timestamp"
    assert deals.metadata["estuary/connector_image"] == "ghcr.io/estuary/source-postgres:v3"
    assert deals.metadata["estuary/binding_resource"].value == {"namespace": "public", "stream": "deals"}
    assert deals.owners == ["team:data-platform"] and "sales opportunities" in deals.description
    calls = {
        c.name: c.type
        for c in specs[dg.AssetKey(["estuary", "sophia", "postgres-cdc", "calls"])]
        .metadata["dagster/column_schema"]
        .columns
    }
    assert calls["id"] == "uuid" and calls["tags"] == "array" and calls["sentiment"] == "numeric"
    raw = specs[RAW_DEALS]
    assert raw.metadata["dagster/table_name"] == "sophia.raw.deals"
    assert {"flow_document", "flow_published_at", "_meta/op"} <= {
        c.name for c in raw.metadata["dagster/column_schema"].columns
    }
    assert (
        raw.metadata["estuary/task"] == "sophia/snowflake"
        and raw.metadata["estuary/collection"] == "sophia/postgres-cdc/deals"
    )
    conversations = {
        c.name: c.type
        for c in specs[dg.AssetKey(["estuary", "sophia", "postgres-cdc", "conversations"])]
        .metadata["dagster/column_schema"]
        .columns
    }
    assert conversations["messages"] == "json"
    assert all("${" not in str(spec.metadata) for spec in specs.values())


def test_one_overridden_method_changes_one_kind_of_key_and_lineage_follows() -> None:
    class WarehouseInAnalytics(DagsterEstuaryTranslator):
        def get_destination_asset_key(self, binding: EstuaryBinding) -> dg.AssetKey:
            return dg.AssetKey(["analytics", binding.resource["table"]])

    assets = build_estuary_assets(load_catalog(), WarehouseInAnalytics())
    graph = (
        dg.Definitions(assets=assets, resources={"estuary": EstuaryWorkspace(api_token="unused")})
        .get_repository_def()
        .asset_graph
    )
    assert graph.get(dg.AssetKey(["analytics", "deals"])).parent_keys == {DEALS}
    assert RAW_DEALS not in graph.get_all_asset_keys() and DEALS in graph.get_all_asset_keys()


def test_loading_the_definitions_makes_no_network_call_and_no_warning() -> None:
    script = textwrap.dedent("""
        import socket, warnings
        def refuse(*args, **kwargs):
            raise AssertionError("network call while loading definitions")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        import dagster as dg
        from sophia_dagster.defs.estuary.platform import estuary_definitions
        from sophia_dagster.estuary.resource import EstuaryWorkspace
        resources = dg.Definitions(resources={"estuary": EstuaryWorkspace(api_token="t")})
        defs = dg.Definitions.merge(estuary_definitions(), resources)
        dg.Definitions.validate_loadable(defs)
        print(len(defs.get_repository_def().asset_graph.get_all_asset_keys()))
    """)
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "27" and done.stderr == ""


def task_asset(name: str) -> dg.AssetsDefinition:
    return next(
        a
        for a in build_estuary_assets(load_catalog())
        if isinstance(a, dg.AssetsDefinition) and a.node_def.name == name
    )


def test_materializing_a_subset_publishes_and_reports_only_the_subset(
    fake: FakeEstuary, workspace: EstuaryWorkspace
) -> None:
    capture = task_asset("estuary_sophia_postgres_cdc")
    result = dg.materialize([capture], selection=[DEALS], resources={"estuary": workspace})
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == DEALS
    metadata = event.materialization.metadata
    assert metadata["estuary/pub_id"].value == fake.live["sophia/postgres-cdc"]["last_pub_id"]
    assert (
        metadata["estuary/status"].value == "ok" and metadata["estuary/collection"].value == "sophia/postgres-cdc/deals"
    )
    assert metadata["estuary/docs_this_hour"].value == 0


def test_a_failed_publication_fails_the_step_with_estuarys_errors(
    fake: FakeEstuary, workspace: EstuaryWorkspace
) -> None:
    workspace.publish(["sophia/snowflake"])
    fake.concurrent_change = "sophia/snowflake"
    result = dg.materialize(
        [task_asset("estuary_sophia_snowflake__sophia_postgres_cdc")],
        resources={"estuary": workspace},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.step_failure_data.user_failure_data
    assert "concurrent change" in data.description
    assert data.metadata["estuary/status"].value == "buildFailed"
    assert "expected publication ID" in data.metadata["estuary/errors"].value[0]["detail"]
    assert fake.live["sophia/snowflake"]["spec"]["changedBy"] == "someone else"


def test_materialize_waits_for_a_healthy_status(fake: FakeEstuary, platform_env: dict[str, str]) -> None:
    fake.set_status("sophia/hubspot", "error", "authentication failed")
    slow = make_workspace(fake, caught_up_timeout_seconds=0.2)
    result = dg.materialize([task_asset("estuary_sophia_hubspot")], resources={"estuary": slow}, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "sophia/hubspot: error authentication failed" in failure.step_failure_data.error.cause.message


@pytest.mark.parametrize("task", ["sophia/postgres-cdc", "sophia/hubspot", "sophia/snowflake"])
def test_each_task_materializes_all_of_its_assets(fake: FakeEstuary, workspace: EstuaryWorkspace, task: str) -> None:
    assets = [a for a in build_estuary_assets(load_catalog()) if isinstance(a, dg.AssetsDefinition)]
    ops = [a for a in assets if a.node_def.name.startswith("estuary_" + task.replace("/", "_").replace("-", "_"))]
    result = dg.materialize(ops, resources={"estuary": workspace})
    assert {e.asset_key for e in result.get_asset_materialization_events()} == {k for a in ops for k in a.keys}
    assert fake.live[task]["last_pub_id"] in fake.publications

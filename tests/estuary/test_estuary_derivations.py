"""Item 5: derivations are multi-assets downstream of their sources, published with the catalog, health-checked."""

from pathlib import Path

import dagster as dg
import pytest

from sophia_dagster.dataplane.plan import runnable_reason
from sophia_dagster.estuary.assets import build_estuary_assets
from sophia_dagster.estuary.catalog import load_catalog
from sophia_dagster.estuary.checks import build_estuary_checks
from sophia_dagster.estuary.workspace import EstuaryWorkspace
from tests.estuary.conftest import make_workspace
from tests.estuary.test_estuary_catalog_forms import published_forms
from tests.fakes.estuary_server import FakeEstuary

FORMS = Path(__file__).resolve().parent / "catalogs" / "forms" / "flow.yaml"
PER_STATION = "acmeCo/rides/rides-per-station"
KEY = dg.AssetKey(["estuary", "acmeCo", "rides", "rides-per-station"])


def derivation_asset(catalog_path: Path) -> dg.AssetsDefinition:
    return next(
        a
        for a in build_estuary_assets(catalog=load_catalog(catalog_path))
        if isinstance(a, dg.AssetsDefinition) and KEY in a.keys
    )


def test_a_derivation_is_an_asset_downstream_of_its_sources() -> None:
    catalog = load_catalog(FORMS)
    assert set(catalog.derivations) == {PER_STATION, "acmeCo/rides/rider-scores"}
    defs = dg.Definitions(
        assets=build_estuary_assets(catalog=catalog),
        asset_checks=build_estuary_checks(catalog=catalog),
        resources={"estuary": EstuaryWorkspace(api_token="unused", catalog_path=str(FORMS))},
    )
    graph = defs.get_repository_def().asset_graph
    node = graph.get(KEY)
    assert node.parent_keys == {
        dg.AssetKey(["estuary", "acmeCo", "rides", "rides"]),
        dg.AssetKey(["estuary", "acmeCo", "rides", "stations"]),
    }
    assert node.kinds == {"estuary", "sqlite"} and node.group_name == "acmeCo_rides_rides_per_station"
    assert graph.get(dg.AssetKey(["estuary", "acmeCo", "rides", "rider-scores"])).kinds == {"estuary", "typescript"}
    assert dg.AssetCheckKey(KEY, "estuary_task_healthy") in graph.asset_check_keys


def test_materializing_a_derivation_publishes_it_with_its_sources(
    fake: FakeEstuary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = published_forms(fake, tmp_path, monkeypatch)
    workspace = make_workspace(fake, flow)
    result = dg.materialize([derivation_asset(flow)], resources={"estuary": workspace})
    assert result.success
    assert set(fake.live) == {PER_STATION, "acmeCo/rides/rides", "acmeCo/rides/stations"}
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == KEY
    assert event.materialization.metadata["estuary/pub_id"].value == fake.live[PER_STATION]["last_pub_id"]
    fake.set_status(PER_STATION, "error", "lambda failed")
    catalog = load_catalog(flow)
    checks = [c for c in build_estuary_checks(catalog=catalog) if KEY in {k.asset_key for k in c.check_keys}]
    evaluated = dg.materialize(
        [derivation_asset(flow), *checks],
        resources={"estuary": workspace},
        selection=dg.AssetSelection.checks(*checks),
        raise_on_error=False,
    )
    (check,) = evaluated.get_asset_check_evaluations()
    assert not check.passed and check.metadata["estuary/message"].value == "lambda failed"


def test_a_paused_derivation_stays_paused(fake: FakeEstuary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flow = published_forms(fake, tmp_path, monkeypatch)
    workspace = make_workspace(fake, flow)
    workspace.publish([PER_STATION])
    fake.pause_live(PER_STATION)
    flow.with_name("per-station.sql").write_text("select $ride_id as station_id, 1 as rides;\n")
    workspace.publish([PER_STATION])
    assert fake.live[PER_STATION]["spec"]["derive"]["shards"]["disable"] is True
    assert fake.live[PER_STATION]["spec"]["derive"]["transforms"][0]["lambda"].startswith("select $ride_id")


def test_locally_a_derivation_that_cannot_run_here_says_why() -> None:
    """TypeScript runs only in Estuary; this SQLite derivation sums and merges documents, which is not done locally
    (SQLite derivations that keep the last document per key run in the embedded data plane:
    tests/local_dataplane/test_derivations.py)."""
    catalog = load_catalog(FORMS)
    assert runnable_reason(catalog, "acmeCo/rides/rider-scores") == (
        "derivation acmeCo/rides/rider-scores uses typescript, which runs only in Estuary; publish it in dev/prod."
    )
    assert runnable_reason(catalog, PER_STATION) == (
        f"derivation {PER_STATION} (SQLite) runs only in Estuary: its schema reduces documents (/ (merge), "
        "/properties/rides (sum)); locally the last document per key is kept. Publish it in dev/prod."
    )

"""HubSpot in the embedded data plane: captured into the warehouse when its token is set, left out (never
made up) when it is not, without holding back the PostgreSQL bindings; the source ready for any first asset."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from sophia_dagster.embedded.postgres import stop_embedded_postgres
from sophia_dagster.estuary.assets import build_estuary_assets
from sophia_dagster.estuary.catalog import load_catalog
from sophia_dagster.estuary.local.resource import LocalDataPlane
from sophia_dagster.warehouse.embedded import stop_embedded_warehouse
from tests.fakes.hubspot_server import FakeHubSpot, hubspot_server
from tests.local_dataplane.conftest import Env, write_catalog

TOKEN = "HUBSPOT_ACCESS_TOKEN"


@pytest.fixture
def hubspot(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeHubSpot, str]]:
    fake = FakeHubSpot()
    monkeypatch.setenv(TOKEN, fake.token)
    with hubspot_server(fake) as url:
        yield fake, url


def rows(env: Env, table: str) -> dict[int, tuple]:
    with env.warehouse() as conn:
        cursor = conn.cursor()
        cursor.execute(f'SELECT id, properties, "_meta/op", archived FROM {table}')
        return {int(r[0]): (json.loads(r[1]), r[2], r[3]) for r in cursor.fetchall()}


def test_hubspot_runs_for_real_when_its_token_is_set(env: Env, hubspot: tuple[FakeHubSpot, str]) -> None:
    fake, url = hubspot
    ada = fake.create("contacts", email="ada@example.com", firstname="Ada", phone=None)
    gone = fake.create("contacts", email="gone@example.com")
    deal = fake.create("deals", dealname="Big one", amount="12345678901234567890.12")
    plane = env.plane(hubspot_api_url=url)
    first = plane.run("sophia/hubspot")
    assert first.backfilled == {
        "sophia/hubspot/contacts": 2,
        "sophia/hubspot/companies": 0,
        "sophia/hubspot/deals": 1,
        "sophia/hubspot/engagements": 0,
    }
    assert rows(env, "hubspot_deals")[deal][0]["amount"] == "12345678901234567890.12"
    assert rows(env, "hubspot_contacts")[ada][0]["phone"] is None

    fake.update("contacts", ada, firstname="Ada L.")
    fake.archive("contacts", gone)
    added = fake.create("contacts", email="new@example.com")
    second = plane.run("sophia/hubspot")
    assert dict(second.counts["sophia/hubspot/contacts"]) == {"inserted": 1, "updated": 1, "deleted": 1}
    contacts = rows(env, "hubspot_contacts")
    assert contacts[ada][0]["firstname"] == "Ada L." and contacts[ada][1] == "u"
    assert contacts[gone][1:] == ("d", True) and contacts[added][1] == "c"
    assert plane.run("sophia/hubspot").totals() == {}
    assert plane.status(["sophia/hubspot"])[0].status == "ok"


def test_a_401_fails_the_capture_with_one_clear_line(env: Env, hubspot: tuple[FakeHubSpot, str], monkeypatch) -> None:
    _, url = hubspot
    monkeypatch.setenv(TOKEN, "pat-na1-not-the-right-one")
    plane = env.plane(hubspot_api_url=url)
    with pytest.raises(Exception, match=f"HTTP 401.*HubSpot rejected {TOKEN}") as raised:
        plane.run("sophia/hubspot")
    assert "not-the-right-one" not in str(raised.value)
    assert plane.status(["sophia/hubspot"])[0].status == "error"


def test_materialize_all_on_a_fresh_state_dir_leaves_hubspot_out(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(TOKEN, raising=False)
    state_dir = tmp_path / "fresh"
    write_catalog(tmp_path / "catalog")
    plane = LocalDataPlane(
        state_dir=str(state_dir),
        catalog_path=str(tmp_path / "catalog"),
        embedded_source_setup="sophia_dagster.embedded.demo:seed_demo",
    )
    assets = [a for a in build_estuary_assets(load_catalog(tmp_path / "catalog")) if isinstance(a, dg.AssetsDefinition)]
    instance = dg.DagsterInstance.ephemeral()
    try:
        result = dg.materialize(assets, resources={"estuary": plane}, instance=instance)
        assert result.success
        done = {
            e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()
        }
        assert not [key for key in done if "hubspot" in key]
        assert {"estuary/sophia/postgres-cdc/deals", "snowflake/sophia/raw/deals"} <= set(done)
        table = done["snowflake/sophia/raw/deals"]
        assert table["rows_backfilled"].value == table["rows_inserted"].value == 1200
        assert table["dagster/row_count"].value == 1200 and table["estuary/lag_bytes"].value < 1_000_000
        assert done["estuary/sophia/postgres-cdc/deals"]["rows_backfilled"].value == 1200
        assert "ran_in_this_process" not in table
        warnings = [
            e.message for e in instance.all_logs(result.run_id) if e.level >= 30 and f"{TOKEN} is not set" in e.message
        ]
        assert warnings
        skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
        assert skipped == {"estuary_sophia_snowflake__sophia_hubspot"}
        again = dg.materialize(assets, resources={"estuary": plane}, instance=instance)
        deals = next(
            e.materialization.metadata
            for e in again.get_asset_materialization_events()
            if e.asset_key.to_user_string() == "snowflake/sophia/raw/deals"
        )
        assert deals["rows_inserted"].value == deals["rows_backfilled"].value == 0
        assert deals["dagster/row_count"].value == 1200
    finally:
        stop_embedded_warehouse(state_dir)
        stop_embedded_postgres(state_dir)

"""Item 4: every catalog form Estuary accepts loads and publishes; forms it cannot take say 'not supported'."""

import json
import shutil
from pathlib import Path

import pytest

from sophia_dagster.estuary.catalog import CatalogError, load_catalog
from sophia_dagster.estuary.errors import EstuaryError
from tests.estuary.conftest import make_workspace
from tests.fakes.estuary_server import FakeEstuary

CATALOGS = Path(__file__).resolve().parent / "catalogs"
FORMS = CATALOGS / "forms"
CAPTURE, SNOW = "acmeCo/rides/source-postgres", "acmeCo/rides/snowflake"
REMOTE_SCHEMA = "type: object\nproperties: {id: {type: string}}\nrequired: [id]\n"
ENV = {"RIDES_PG_ADDRESS": "rides.internal:5432", "RIDES_PG_PASSWORD": "rides-password-0123"}


def test_every_accepted_form_loads() -> None:
    catalog = load_catalog(FORMS / "flow.yaml")
    rides = catalog.collections["acmeCo/rides/rides"]
    assert rides.document_schema["$id"] == (FORMS / "rides.schema.yaml").as_uri()
    assert set(catalog.schema_properties("acmeCo/rides/rides")) == {"ride_id", "rider", "started", "shift", "surge"}
    assert set(catalog.schema_properties("acmeCo/rides/stations")) == {"station_id", "opened"}
    assert set(catalog.schema_properties("acmeCo/rides/riders")) == {"rider_id", "name"}
    assert catalog.collections["acmeCo/rides/remote"].schema_ == "https://schemas.example.invalid/remote.schema.yaml"
    capture = catalog.captures[CAPTURE]
    assert capture.endpoint.connector.config["address"] == "${RIDES_PG_ADDRESS}"
    assert capture.bindings[0].resource["schedule"] == "12:30"
    snowflake = catalog.materializations[SNOW]
    assert "sops" in snowflake.endpoint.connector.config
    assert catalog.spec(SNOW)["sourceCapture"] == {
        "capture": CAPTURE,
        "deltaUpdates": False,
        "targetSchema": "fromSourceName",
    }
    assert catalog.collections_of(SNOW) == ["acmeCo/rides/rides", "acmeCo/rides/stations", "acmeCo/fleet/vehicles"]
    assert catalog.external_collections() == ["acmeCo/fleet/vehicles"]
    assert list(catalog.tests) == ["acmeCo/rides/test-rides"]
    derive = catalog.spec("acmeCo/rides/rides-per-station")["derive"]
    assert derive["transforms"][0]["lambda"] == "select $rider.rider_id as station_id, 1 as rides;\n"


def published_forms(fake: FakeEstuary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The forms catalog with its remote schema served by the fake, and the environment it needs."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    fake.files["remote.schema.yaml"] = REMOTE_SCHEMA
    fake.vault["c2VjcmV0"] = "-----BEGIN PRIVATE KEY-----"  # the data key of materialize.sops.yaml's ciphertext
    folder = Path(shutil.copytree(FORMS, tmp_path / "forms"))
    flow = folder / "flow.yaml"
    flow.write_text(flow.read_text().replace("https://schemas.example.invalid/", f"{fake.base_url}/files/"))
    return flow


def staged(fake: FakeEstuary) -> dict[str, dict]:
    return {
        row["catalog_name"]: row["spec"]
        for r in fake.requests
        if r.path.endswith("/draft_specs")
        for row in json.loads(r.body)
    }


def test_every_accepted_form_publishes(fake: FakeEstuary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flow = published_forms(fake, tmp_path, monkeypatch)
    fake.add_live("acmeCo/fleet/vehicles", "collection", {"key": ["/id"], "schema": {"type": "object"}})
    workspace = make_workspace(fake, flow)
    result = workspace.publish()
    assert result.status == "success"
    specs = staged(fake)
    assert "acmeCo/fleet/vehicles" not in specs
    remote = specs["acmeCo/rides/remote"]["schema"]
    assert remote["$id"] == f"{fake.base_url}/files/remote.schema.yaml" and remote["required"] == ["id"]
    module = specs["acmeCo/rides/rider-scores"]["derive"]["using"]["typescript"]["module"]
    assert "export class Derivation" in module
    assert specs[SNOW]["endpoint"]["connector"]["config"]["credentials"]["private_key_sops"].startswith("ENC[")
    (plaintext,) = fake.plaintext_configs  # the capture's config was encrypted; the sops one passed through
    assert plaintext["address"] == "rides.internal:5432"


def test_a_binding_to_a_collection_neither_in_the_repo_nor_live_is_named(
    fake: FakeEstuary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = published_forms(fake, tmp_path, monkeypatch)
    with pytest.raises(EstuaryError) as caught:
        make_workspace(fake, flow).publish([SNOW])
    message = str(caught.value)
    assert (
        "acmeCo/fleet/vehicles" in message and "materializations.acmeCo/rides/snowflake.bindings[2].source" in message
    )
    assert str(flow) in message and fake.publications_made() == 0


@pytest.mark.parametrize(
    ("file", "path", "words"),
    [
        ("local.flow.yaml", "captures.acmeCo/local/source-postgres.endpoint.local", "local connector"),
        ("old-derivation.flow.yaml", "collections.acmeCo/old/balances.derivation", "old derivation syntax"),
        ("collections-list.flow.yaml", "collections", "list of {name: ...}"),
    ],
)
def test_unsupported_forms_say_so_with_file_and_path(file: str, path: str, words: str) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(CATALOGS / "unsupported" / file)
    (issue,) = caught.value.issues
    assert issue.file == str(CATALOGS / "unsupported" / file) and issue.path == path
    assert issue.reason.startswith("not supported: ") and words in issue.reason


def test_a_missing_schema_file_is_named(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("collections:\n  acmeCo/x/y:\n    schema: nowhere.schema.yaml\n    key: [/id]\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(flow)
    (issue,) = caught.value.issues
    assert issue.file == str(flow) and issue.path == "collections.acmeCo/x/y.schema"
    assert "nowhere.schema.yaml" in issue.reason

"""Item 1: catalogs are read as YAML 1.2, as flowctl reads them, so values reach Estuary unchanged."""

import json
from pathlib import Path

import pytest

from sophia_dagster.estuary.catalog import CatalogError, load_catalog
from sophia_dagster.estuary.catalog.yaml12 import read_yaml
from tests.estuary.conftest import make_workspace
from tests.fakes.estuary_server import FakeEstuary

CATALOG = """
captures:
  acmeCo/yaml/source-postgres:
    endpoint:
      connector:
        image: ghcr.io/estuary/source-postgres:v3
        config:
          address: db.internal:5432
          database: app
          user: flow_capture
          credentials: {auth_type: UserPassword, password: "${YAML12_PASSWORD}"}
          advanced: {sslmode: yes, slotName: off, backfill_chunk_size: 1_000}
    bindings:
      - resource: {namespace: public, stream: shifts, schedule: 12:30, since: 2024-01-01T00:00:00Z}
        target: acmeCo/yaml/shifts
collections:
  acmeCo/yaml/shifts:
    key: [/id]
    schema:
      type: object
      properties:
        id: {type: integer}
        starts: {type: string, default: 12:30}
        opened: {type: string, default: 2021-06-01}
        enabled: {type: string, enum: [yes, no, on, off]}
      required: [id]
"""


def test_yaml_1_1_lookalikes_stay_strings() -> None:
    values = read_yaml("a: 12:30\nb: off\nc: yes\nd: 2024-01-01\ne: 2024-01-01T10:00:00Z\nf: 1_000\ng: 0o17\n", "x")
    assert values == {
        "a": "12:30",
        "b": "off",
        "c": "yes",
        "d": "2024-01-01",
        "e": "2024-01-01T10:00:00Z",
        "f": "1_000",
        "g": 15,
    }


def test_every_value_is_published_as_written(
    fake: FakeEstuary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YAML12_PASSWORD", "pw-0123456789")
    (tmp_path / "yaml.flow.yaml").write_text(CATALOG)
    make_workspace(fake, tmp_path).publish(["acmeCo/yaml/source-postgres"])
    staged = {
        row["catalog_name"]: row["spec"]
        for r in fake.requests
        if r.path.endswith("/draft_specs")
        for row in json.loads(r.body)
    }
    resource = staged["acmeCo/yaml/source-postgres"]["bindings"][0]["resource"]
    assert resource == {"namespace": "public", "stream": "shifts", "schedule": "12:30", "since": "2024-01-01T00:00:00Z"}
    (config,) = fake.plaintext_configs
    assert config["advanced"] == {"sslmode": "yes", "slotName": "off", "backfill_chunk_size": "1_000"}
    properties = staged["acmeCo/yaml/shifts"]["schema"]["properties"]
    assert properties["starts"]["default"] == "12:30" and properties["opened"]["default"] == "2021-06-01"
    assert properties["enabled"]["enum"] == ["yes", "no", "on", "off"]


def test_a_repeated_key_names_file_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.flow.yaml"
    path.write_text(CATALOG.replace("database: app\n", "database: app\n          database: other\n"))
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    (issue,) = caught.value.issues
    assert issue.file == str(path)
    assert issue.path == "captures.acmeCo/yaml/source-postgres.endpoint.connector.config.database"
    assert "duplicate key 'database'" in issue.reason and "(line 10)" in issue.reason

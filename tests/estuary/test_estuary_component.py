"""EstuaryCatalogComponent as a user meets it: scaffolded by `dg` into a new project, checked and listed there;
its task selector and translation; and the integration's import staying free of the data plane."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox

from sophia_dagster.config import PLATFORM_CATALOG_DIR
from sophia_dagster.estuary import CatalogError, EstuaryCatalogComponent, EstuaryWorkspace

DG = Path(sys.executable).parent / "dg"
SCRATCH_PYPROJECT = """\
[project]
name = "scratch"
version = "0.0.1"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "scratch"
defs_module = "scratch.defs"
"""
SCRATCH_DEFINITIONS = """\
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """An empty dg project (the layout `dg scaffold project` makes), using this environment's Python."""
    (tmp_path / "scratch" / "defs").mkdir(parents=True)
    (tmp_path / "scratch" / "__init__.py").touch()
    (tmp_path / "scratch" / "defs" / "__init__.py").touch()
    (tmp_path / "scratch" / "definitions.py").write_text(SCRATCH_DEFINITIONS)
    (tmp_path / "pyproject.toml").write_text(SCRATCH_PYPROJECT)
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return tmp_path


def dg_cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(project),
        "VIRTUAL_ENV": str(Path(sys.executable).parent.parent),
        "PATH": f"{DG.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run([str(DG), *args], cwd=project, env=env, capture_output=True, text=True, timeout=300)


def test_dg_scaffolds_a_defs_yaml_that_checks_and_lists(scratch: Path) -> None:
    scaffolded = dg_cli(scratch, "scaffold", "defs", "sophia_dagster.estuary.EstuaryCatalogComponent", "orders")
    assert scaffolded.returncode == 0, scaffolded.stderr[-3000:]
    folder = scratch / "scratch" / "defs" / "orders"
    written = yaml.safe_load((folder / "defs.yaml").read_text())
    assert written["type"] == "sophia_dagster.estuary.EstuaryCatalogComponent"
    assert written["attributes"]["workspace"] == {"api_token_env": "ESTUARY_API_TOKEN"}
    assert (folder / written["attributes"]["catalog_paths"][0]).is_file()

    checked = dg_cli(scratch, "check", "defs")
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]

    listed = dg_cli(scratch, "list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    defs = json.loads(listed.stdout[listed.stdout.index("{") :])
    assert {a["asset_key"] for a in defs["assets"]} == {
        "postgres/public/orders",
        "estuary/acme/postgres-cdc/orders",
        "snowflake/acme/raw/orders",
    }
    assert {c["key"] for c in defs["asset_checks"]} == {
        "estuary/acme/postgres-cdc/orders:estuary_task_healthy",
        "snowflake/acme/raw/orders:estuary_task_healthy",
    }
    assert [s["name"] for s in defs["sensors"]] == ["estuary_activity_sensor"]
    assert [r["type"] for r in defs["resources"]] == ["sophia_dagster.estuary.workspace.EstuaryWorkspace"]


def component_defs(attributes: dict) -> dg.Definitions:
    """The component's definitions from a defs.yaml beside a copy of the platform catalog, in Dagster's sandbox."""
    with create_defs_folder_sandbox() as sandbox:
        folder = sandbox.scaffold_component(
            component_cls=EstuaryCatalogComponent,
            defs_yaml_contents={"type": "sophia_dagster.estuary.EstuaryCatalogComponent", "attributes": attributes},
            scaffold_params={"catalog_path": "."},
        )
        for file in PLATFORM_CATALOG_DIR.glob("*.flow.yaml"):
            shutil.copy(file, folder)
        with sandbox.load_component_and_build_defs(defs_path=folder) as (_, defs):
            return defs


def test_the_selector_and_translation_shape_the_graph() -> None:
    defs = component_defs(
        {
            "tasks": {"by_pattern": "sophia/(postgres-cdc|snowflake)"},
            "translation": {
                "group_name": "{{ binding.connector.name | replace('-', '_') }}",
                "owners": ["team:data"],
                "tags": {"estuary/connector": "{{ binding.connector.name }}"},
                "key_prefix": "lake",
            },
            "activity_sensor": False,
        },
    )
    merged = dg.Definitions.merge(defs, dg.Definitions(resources={"estuary": EstuaryWorkspace(api_token="t")}))
    graph = merged.get_repository_def().asset_graph
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert "lake/snowflake/sophia/raw/deals" in keys and not any(k.startswith("hubspot/") for k in keys)
    assert not graph.get(dg.AssetKey(["estuary", "sophia", "hubspot", "contacts"])).is_materializable
    deals = graph.get(dg.AssetKey(["lake", "snowflake", "sophia", "raw", "deals"]))
    assert deals.parent_keys == {dg.AssetKey(["lake", "estuary", "sophia", "postgres-cdc", "deals"])}
    assert deals.group_name == "materialize_snowflake" and deals.owners == ["team:data"]
    assert deals.tags["estuary/connector"] == "materialize-snowflake"
    assert not list(merged.sensors or [])


def test_an_unknown_task_name_is_named() -> None:
    with pytest.raises(Exception) as caught:
        component_defs({"tasks": {"by_name": ["sophia/nope"]}})
    assert isinstance(caught.value.__cause__ or caught.value, CatalogError)
    assert "not a task of the catalog: sophia/nope" in str(caught.value.__cause__ or caught.value)


def test_component_docstring_shows_an_example() -> None:
    doc = EstuaryCatalogComponent.__doc__ or ""
    assert "Args:" in doc and "Example:" in doc and "dg scaffold defs" in doc


def test_importing_the_integration_leaves_the_data_plane_out() -> None:
    script = textwrap.dedent("""
        import sys
        import sophia_dagster.estuary
        loaded = [m for m in sys.modules if m.split(".")[0] in {"psycopg", "pyarrow"}
                  or m.startswith("sophia_dagster.dataplane") or m == "sophia_dagster.config"]
        print(loaded)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

"""The catalog loader: the platform's files, every kind of invalid file, placeholders, and a property test."""

import textwrap
from pathlib import Path

import dagster as dg
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sophia_dagster.config import PLATFORM_CATALOG_DIR
from sophia_dagster.estuary.assets import build_estuary_assets
from sophia_dagster.estuary.catalog import (
    CatalogError,
    format_path,
    iter_placeholders,
    load_catalog,
    parse_catalog_text,
    resolve_placeholders,
)
from sophia_dagster.estuary.workspace import EstuaryWorkspace

VALID = """
captures:
  acme/pg:
    endpoint:
      connector:
        image: ghcr.io/estuary/source-postgres:v3
        config: {address: "${PG_ADDRESS}", password: "${PG_PASSWORD}"}
    bindings:
      - {resource: {namespace: public, stream: a}, target: acme/pg/a}
      - {resource: {namespace: public, stream: b}, target: acme/pg/b}
      - {resource: {namespace: public, stream: c}, target: acme/pg/c}
collections:
  acme/pg/a: {key: [/id], schema: {type: object, properties: {id: {type: integer}}, required: [id]}}
  acme/pg/b: {key: [/id], schema: {type: object, properties: {id: {type: integer}}, required: [id]}}
  acme/pg/c: {key: [/id], schema: {type: object, properties: {id: {type: integer}}, required: [id]}}
materializations:
  acme/wh:
    endpoint:
      connector:
        image: ghcr.io/estuary/materialize-snowflake:v4
        config: {host: x.snowflakecomputing.com, database: DB, schema: RAW}
    bindings:
      - {resource: {table: a}, source: acme/pg/a}
"""


def write(tmp_path: Path, text: str, name: str = "main.flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def issues_of(path: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    return [(Path(i.file).name, i.path, i.reason) for i in caught.value.issues]


def test_platform_catalog_has_the_three_tasks_and_keeps_placeholders() -> None:
    catalog = load_catalog(PLATFORM_CATALOG_DIR)
    assert sorted(catalog.tasks) == ["sophia/hubspot", "sophia/postgres-cdc", "sophia/snowflake"]
    assert catalog.collections_of("sophia/postgres-cdc") == [
        f"sophia/postgres-cdc/{t}" for t in ("companies", "contacts", "deals", "calls", "conversations")
    ]
    assert catalog.collections_of("sophia/hubspot") == [
        f"sophia/hubspot/{o}" for o in ("contacts", "companies", "deals", "engagements")
    ]
    assert sorted(catalog.collections_of("sophia/snowflake")) == sorted(catalog.collections)
    pg = catalog.spec("sophia/postgres-cdc")
    assert pg["endpoint"]["connector"]["config"]["credentials"]["password"] == "${POSTGRES_CAPTURE_PASSWORD}"
    assert pg["endpoint"]["connector"]["config"]["advanced"] == {
        "publicationName": "flow_publication",
        "slotName": "flow_slot",
        "sslmode": "require",
    }
    deals = catalog.spec("sophia/postgres-cdc/deals")
    assert deals["key"] == ["/id"] and deals["schema"]["properties"]["amount"]["format"] == "number"
    assert catalog.spec("sophia/snowflake")["endpoint"]["connector"]["config"]["credentials"]["auth_type"] == "jwt"
    variables = {var for task in catalog.tasks for var, _ in iter_placeholders(catalog.spec(task))}
    assert variables == {
        "POSTGRES_CAPTURE_ADDRESS",
        "POSTGRES_CAPTURE_PASSWORD",
        "HUBSPOT_ACCESS_TOKEN",
        "SNOWFLAKE_ACCOUNT",
        "ESTUARY_SNOWFLAKE_PRIVATE_KEY",
    }


def test_binding_to_undeclared_collection_names_file_path_and_reason(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("target: acme/pg/c", "target: acme/pg/zzz"))
    assert issues_of(path) == [
        ("main.flow.yaml", "captures.acme/pg.bindings[2].target", "collection 'acme/pg/zzz' is not declared")
    ]


def test_materialization_reading_missing_collection(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("source: acme/pg/a", "source: acme/pg/gone"))
    assert issues_of(path) == [
        ("main.flow.yaml", "materializations.acme/wh.bindings[0].source", "reads missing collection 'acme/pg/gone'")
    ]


def test_duplicate_name_across_files_names_both(tmp_path: Path) -> None:
    write(tmp_path, VALID)
    write(tmp_path, "collections:\n  acme/pg/a: {key: [/id], schema: {type: object}}\n", "other.flow.yaml")
    ((file, path, reason),) = issues_of(tmp_path)
    assert (file, path) == ("other.flow.yaml", "collections.acme/pg/a")
    assert "duplicate catalog name" in reason and "main.flow.yaml" in reason


def test_duplicate_yaml_key_is_an_error_not_last_wins(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "  acme/wh:\n    endpoint: {connector: {image: 'a/b:v1', config: {}}}\n")
    ((_, _, reason),) = issues_of(path)
    assert "duplicate key 'acme/wh'" in reason


@pytest.mark.parametrize("name", ["nameless", "acme//x", "acme/has space", "acme/../etc", "/acme/x"])
def test_bad_catalog_names(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, VALID.replace("acme/wh:", f"'{name}':"))
    assert (
        "main.flow.yaml",
        f"materializations.{name}",
        f"invalid catalog name {name!r}: expected 'prefix/name'",
    ) in issues_of(path)


def test_schema_errors_carry_the_pydantic_path(tmp_path: Path) -> None:
    text = VALID.replace("image: ghcr.io/estuary/source-postgres:v3", "image: source-postgres").replace(
        "key: [/id], schema: {type: object, properties: {id: {type: integer}}, required: [id]}}\n  acme/pg/c",
        "key: [id], schema: {type: object}}\n  acme/pg/c",
    )
    issues = issues_of(write(tmp_path, text))
    paths = {path: reason for _, path, reason in issues}
    assert "must look like" in paths["captures.acme/pg.endpoint.connector.image"]
    assert "is not a JSON pointer" in paths["collections.acme/pg/b.key"]


def test_misspelled_field_is_rejected(tmp_path: Path) -> None:
    text = VALID.replace(
        "    bindings:\n      - {resource: {table: a}", "    bindngs: []\n    bindings:\n      - {resource: {table: a}"
    )
    assert issues_of(write(tmp_path, text)) == [
        ("main.flow.yaml", "materializations.acme/wh.bindngs", "Extra inputs are not permitted")
    ]


def test_key_must_be_a_schema_property(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("acme/pg/c: {key: [/id]", "acme/pg/c: {key: [/nope]"))
    assert issues_of(path) == [("main.flow.yaml", "collections.acme/pg/c.key[0]", "'/nope' is not a schema property")]


def test_imports_are_followed_and_missing_imports_reported(tmp_path: Path) -> None:
    write(tmp_path, VALID, "base.yaml")
    ok = write(tmp_path, "import: [base.yaml]\n", "root.flow.yaml")
    assert "acme/pg" in load_catalog(ok).captures
    bad = write(tmp_path, "import: [base.yaml, missing.yaml]\n", "root.flow.yaml")
    assert issues_of(bad) == [("root.flow.yaml", "import[1]", "no such local file: 'missing.yaml'")]


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    assert "not valid YAML" in issues_of(write(tmp_path, "captures: [unclosed"))[0][2]
    assert issues_of(write(tmp_path, "- a\n- b\n"))[0][1:] == ("", "expected a mapping at the top, got list")
    (tmp_path / "empty").mkdir()
    assert issues_of(tmp_path / "empty") == [("empty", "", "no *.flow.yaml files found")]


def test_placeholders_resolve_only_on_demand_and_missing_ones_name_variable_and_path() -> None:
    spec = {"endpoint": {"connector": {"config": {"a": "${ONE}:${TWO}", "list": ["${THREE}"]}}}}
    assert resolve_placeholders(spec, {"ONE": "1", "TWO": "2", "THREE": "3"}, "f.yaml", ("captures", "x/y")) == {
        "endpoint": {"connector": {"config": {"a": "1:2", "list": ["3"]}}}
    }
    with pytest.raises(CatalogError) as caught:
        resolve_placeholders(spec, {"ONE": "secret-one"}, "f.yaml", ("captures", "x/y"))
    message = str(caught.value)
    assert "environment variable TWO is not set" in message and "captures.x/y.endpoint.connector.config.a" in message
    assert "captures.x/y.endpoint.connector.config.list[0]" in message and "secret-one" not in message


def test_format_path() -> None:
    assert format_path(("captures", "sophia/pg", "bindings", 2, "target")) == "captures.sophia/pg.bindings[2].target"


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=25,
)
section = st.sampled_from(["captures", "collections", "materializations", "import", "tests", "bindings"])
catalogish = st.dictionaries(
    section,
    st.dictionaries(st.sampled_from(["acme/a", "acme/b", "bad", "acme/a/b"]), yaml_values, max_size=3) | yaml_values,
    max_size=3,
)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), yaml_values.map(yaml.safe_dump), catalogish.map(yaml.safe_dump)))
def test_any_yaml_is_either_a_catalog_or_a_catalog_error(text: str) -> None:
    try:
        parsed = parse_catalog_text(text, "prop.flow.yaml")
    except CatalogError as exc:
        assert exc.issues and all(i.file == "prop.flow.yaml" for i in exc.issues)
    else:
        assert isinstance(parsed.captures, dict)


@settings(max_examples=150, deadline=None, database=None)
@given(catalogish.map(yaml.safe_dump))
def test_loading_arbitrary_files_raises_only_catalog_errors(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("prop") / "x.flow.yaml"
    path.write_text(text)
    try:
        catalog = load_catalog(path)
    except CatalogError as exc:
        assert exc.issues
    else:
        assert set(catalog.files) == set(catalog.captures) | set(catalog.collections) | set(catalog.materializations)


names = st.sampled_from(["acme/a", "acme/b", "acme/c", "acme/a-b", "acme/a_b", "bad name", "acme"])
text_or_scalar = st.one_of(st.sampled_from(["public", "deals", "t.x", "Ünï", ""]), yaml_scalars)
connector = st.fixed_dictionaries(
    {
        "image": st.sampled_from(
            ["ghcr.io/estuary/source-postgres:v3", "ghcr.io/estuary/materialize-snowflake:v4", "x"]
        ),
        "config": st.dictionaries(st.sampled_from(["database", "schema", "password"]), text_or_scalar, max_size=3),
    }
)
resource = st.dictionaries(
    st.sampled_from(["namespace", "stream", "name", "table", "schema"]), text_or_scalar, max_size=3
)
structured = st.fixed_dictionaries(
    {},
    optional={
        "captures": st.dictionaries(
            names,
            st.fixed_dictionaries(
                {
                    "endpoint": st.fixed_dictionaries({"connector": connector}),
                    "bindings": st.lists(st.fixed_dictionaries({"resource": resource, "target": names}), max_size=3),
                }
            ),
            max_size=3,
        ),
        "collections": st.dictionaries(
            names,
            st.fixed_dictionaries(
                {
                    "key": st.lists(st.sampled_from(["/id", "id", "/", "/x/y"]), max_size=2),
                    "schema": st.fixed_dictionaries(
                        {},
                        optional={
                            "properties": st.dictionaries(
                                st.sampled_from(["id", "x", "_meta"]), yaml_values, max_size=3
                            )
                        },
                    ),
                }
            ),
            max_size=4,
        ),
        "materializations": st.dictionaries(
            names,
            st.fixed_dictionaries(
                {
                    "endpoint": st.fixed_dictionaries({"connector": connector}),
                    "bindings": st.lists(
                        st.fixed_dictionaries(
                            {"resource": resource, "source": st.one_of(names, st.fixed_dictionaries({"name": names}))}
                        ),
                        max_size=3,
                    ),
                }
            ),
            max_size=2,
        ),
    },
)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(structured)
def test_catalogs_that_load_always_build_a_valid_asset_graph(
    tmp_path_factory: pytest.TempPathFactory, document: dict
) -> None:
    path = tmp_path_factory.mktemp("structured") / "x.flow.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        catalog = load_catalog(path)
        assets = build_estuary_assets(catalog)
    except CatalogError as exc:
        assert exc.issues and all(Path(i.file).name == "x.flow.yaml" for i in exc.issues)
        return
    for task in catalog.captures.values():
        assert all(b.target in catalog.collections for b in task.bindings)
    workspace = EstuaryWorkspace(api_token="unused", catalog_path=str(path))
    defs = dg.Definitions(assets=assets, resources={"estuary": workspace})
    dg.Definitions.validate_loadable(defs)

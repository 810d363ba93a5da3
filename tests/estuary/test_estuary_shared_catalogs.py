"""Estuary's own public catalogs (``<repo>/../shared/estuary-catalogs``): each loads or says 'not supported'.

The folder is test data kept beside the repository (SOURCES.txt says where each file comes from); a missing
folder fails this test instead of skipping it.
"""

from pathlib import Path

from sophia_dagster.estuary.catalog import CatalogError, load_catalog

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "estuary-catalogs"
LOADING = {
    "connectors/materialize-boilerplate/testdata/integration/collections.materialize.flow.yaml",
    "connectors/materialize-boilerplate/testdata/integration/collections.migrate-base.flow.yaml",
    "connectors/materialize-boilerplate/testdata/materializer/backfill-key-change.flow.yaml",
    "connectors/materialize-boilerplate/testdata/validate/base.flow.yaml",
    "connectors/source-hubspot-native/acmeCo/flow.yaml",
    "examples/derivations-sql-full-outer-join/derivation/flow.yaml",
    "examples/postgres-to-snowflake-cdc/flow/capture.flow.yaml",
    "examples/postgres-to-snowflake-cdc/flow/materialization.flow.yaml",
    "examples/python-derivations/shipments-stateful/flow.yaml",
    "examples/sqlserver-cdc-capture/flow.yaml",
    "examples/sqlserver-cdc-capture/your-prefix/flow.yaml",
    "examples/sqlserver-cdc-capture/your-prefix/sqlserver-cdc/flow.yaml",
    "examples/sqlserver-cdc-capture/your-prefix/sqlserver-cdc/dbo/flow.yaml",
    "flow/examples/citi-bike/rides.flow.yaml",
}


def catalog_files() -> list[Path]:
    """Every catalog file of the shared folder (schema files are read through the catalogs that name them)."""
    assert SHARED.is_dir(), f"Estuary's public catalogs are missing: expected them at {SHARED.resolve()}"
    files = sorted(p for p in SHARED.rglob("*.yaml") if not p.name.endswith(".schema.yaml"))
    assert len(files) >= 20, f"only {len(files)} catalogs under {SHARED.resolve()}"
    return files


def outcome(path: Path) -> str | None:
    """``None`` when the catalog loads, else why it does not (checked to be a clear 'not supported')."""
    try:
        load_catalog(path)
    except CatalogError as exc:
        refused = [i for i in exc.issues if i.reason.startswith("not supported: ")]
        assert refused, f"{path}: refused without a 'not supported' reason: {exc}"
        for issue in refused:
            assert Path(issue.file).is_file() and issue.path, f"{path}: {issue} names no file and path"
        return "; ".join(str(i) for i in refused)
    return None


def test_every_public_estuary_catalog_loads_or_is_refused_clearly() -> None:
    results = {str(p.relative_to(SHARED)): outcome(p) for p in catalog_files()}
    loaded = {name for name, refused in results.items() if refused is None}
    assert loaded == LOADING, {name: results[name] for name in loaded ^ LOADING}


def test_refusals_name_the_form() -> None:
    refusal = outcome(SHARED / "connectors/source-postgres/testdata/flow.yaml")
    assert refusal is not None and "captures.acmeCo/test_capture/source-postgres.endpoint.local" in refusal
    refusal = outcome(SHARED / "flow/examples/acmeBank.flow.yaml")
    assert refusal is not None and "collections.acmeBank/balances.derivation" in refusal
    refusal = outcome(SHARED / "flow/examples/weird-types.flow.yaml")
    assert refusal is not None and "collections: not supported" in refusal


def test_the_loaded_catalogs_keep_their_numbers_and_keys() -> None:
    migrate = load_catalog(
        SHARED / "connectors/materialize-boilerplate/testdata/integration/collections.migrate-base.flow.yaml"
    )
    properties = migrate.collections["key/value"].document_schema["properties"]
    assert (
        properties["int256"]["minimum"]
        == -57896044618658097711785492504343953926634992332820282019728792003956564819968.0
    )
    assert properties["int064"]["maximum"] == 9223372036854775807
    hubspot = load_catalog(SHARED / "connectors/source-hubspot-native/acmeCo/flow.yaml")
    assert hubspot.collections["acmeCo/deal_pipelines"].key == ["/_meta/row_id"]
    assert "properties" in hubspot.collections["acmeCo/companies"].document_schema

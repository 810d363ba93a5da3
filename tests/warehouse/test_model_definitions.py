"""Model files -> asset definitions and Snowflake DDL, without any connection (the prod shape)."""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlglot
from sqlglot import exp

from sophia_dagster.config import Settings
from sophia_dagster.warehouse.assets import OBJECTS_KEY, model_ddl
from sophia_dagster.warehouse.models import SQL_DIR, ModelError, create_dynamic_table_sql, load_model, load_models
from sophia_dagster.warehouse.resources import snowflake_resource

EXPECTED = {
    "call_activity": ("1 minute", "INCREMENTAL", {"calls", "contacts", "deals"}, 15),
    "customer_360": ("5 minutes", "AUTO", {"calls", "companies", "contacts", "deals"}, 60),
    "deal_pipeline": ("1 minute", "INCREMENTAL", {"deals"}, 15),
    "source_freshness": ("1 minute", "FULL", {"calls", "companies", "contacts", "conversations", "deals"}, 15),
}
HEADER = "-- description: d\n-- target_lag: 1 minute\n-- fail_window_minutes: 10\n"


def prod_resource(**values: str | None) -> dg.ConfigurableResource:
    settings = Settings(
        environment="prod",
        snowflake_account="acme-prod",
        snowflake_user="SOPHIA_DAGSTER",
        snowflake_pat="pat-canary-5521",
        estuary_api_token="t",
        **{"snowflake_warehouse": "SOPHIA_TRANSFORM_WH", **values},
    )
    return snowflake_resource(settings)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_prod_ddl_is_a_dynamic_table_with_the_model_config(name: str) -> None:
    lag, mode, _, _ = EXPECTED[name]
    model = load_model(SQL_DIR / f"{name}.sql")
    ddl = model_ddl(model, prod_resource())
    head, select = ddl.split("\nAS\n", 1)
    assert head.splitlines() == [
        f"CREATE OR REPLACE DYNAMIC TABLE SOPHIA.ANALYTICS.{name.upper()}",
        f"  TARGET_LAG = '{lag}'",
        "  WAREHOUSE = SOPHIA_TRANSFORM_WH",
        f"  REFRESH_MODE = {mode}",
        f"  COMMENT = '{model.config.description}'",
    ]
    assert select == model.select and not select.lstrip().startswith("--")
    assert isinstance(sqlglot.parse_one(select, read="snowflake"), exp.Query)


def test_prod_models_need_a_warehouse() -> None:
    model = load_models()[0]
    with pytest.raises(dg.Failure, match="needs a warehouse: set SNOWFLAKE_WAREHOUSE"):
        model_ddl(model, prod_resource(snowflake_warehouse=None))


def test_local_ddl_is_a_plain_table(tmp_path: Path) -> None:
    model = load_models()[0]
    ddl = model_ddl(model, snowflake_resource(Settings(state_dir=tmp_path)))
    assert ddl == f"CREATE OR REPLACE TABLE {model.table} AS\n{model.select}"


def test_downstream_lag_is_a_keyword_and_quotes_in_descriptions_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "rollup.sql"
    path.write_text(
        "-- description: Sophia's rollup\n-- target_lag: DOWNSTREAM\n-- fail_window_minutes: 30\n"
        "SELECT 1 AS X FROM SOPHIA.ANALYTICS.DEAL_PIPELINE"
    )
    ddl = create_dynamic_table_sql(load_model(path), "WH")
    assert "  TARGET_LAG = DOWNSTREAM\n" in ddl and "  COMMENT = 'Sophia''s rollup'\n" in ddl
    assert load_model(path).deps == [dg.AssetKey(["snowflake", "sophia", "analytics", "deal_pipeline"])]


def test_assets_declare_deps_from_the_sql_and_a_freshness_policy() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from sophia_dagster.defs.warehouse import defs

        definitions = defs()
    specs = {spec.key: spec for asset in definitions.assets for spec in asset.specs}
    assert OBJECTS_KEY in specs
    for name, (lag, _, inputs, fail_minutes) in EXPECTED.items():
        spec = specs[dg.AssetKey(["snowflake", "sophia", "analytics", name])]
        assert {dep.asset_key for dep in spec.deps} == {
            dg.AssetKey(["snowflake", "sophia", "raw", table]) for table in inputs
        } | {OBJECTS_KEY}
        assert spec.freshness_policy.fail_window.to_timedelta() == timedelta(minutes=fail_minutes)
        assert spec.metadata["target_lag"] == lag and "snowflake" in spec.kinds
    assert len(specs) == len(EXPECTED) + 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + "-- owner: me\nSELECT 1 FROM SOPHIA.RAW.DEALS", "bad.sql: invalid header: owner: Extra inputs"),
        (
            "-- description: d\n-- target_lag: soon\n-- fail_window_minutes: 5\nSELECT 1 FROM SOPHIA.RAW.DEALS",
            "bad.sql: invalid header: target_lag: String should match pattern",
        ),
        (
            "-- description: d\n-- target_lag: 1 hour\nSELECT 1 FROM SOPHIA.RAW.DEALS",
            "bad.sql: invalid header: fail_window_minutes: Field required",
        ),
        (HEADER + "-- not a header\nSELECT 1", "bad.sql: header lines must read '-- key: value'"),
        (HEADER + "-- target_lag: 1 hour\nSELECT 1 FROM SOPHIA.RAW.DEALS", "header key 'target_lag' is given twice"),
        (HEADER + "SELECT * FROM RAW.DEALS", "bad.sql: table 'RAW.DEALS' must be qualified as DATABASE.SCHEMA.TABLE"),
        (HEADER + "DELETE FROM SOPHIA.RAW.DEALS", "bad.sql: a model must be a single SELECT, found DELETE"),
        (HEADER + "SELECT FROM WHERE (", "bad.sql: not valid Snowflake SQL"),
    ],
)
def test_bad_model_files_name_the_file_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.sql"
    path.write_text(text)
    with pytest.raises(ModelError) as caught:
        load_model(path)
    assert str(path) in str(caught.value) and message in str(caught.value)

"""Database objects as code: created once, and a second run changes nothing."""

from __future__ import annotations

import dagster as dg
import sqlglot

from sophia_dagster.warehouse import objects
from sophia_dagster.warehouse.assets import database_objects
from sophia_dagster.warehouse.embedded import EmbeddedSnowflakeResource
from tests.warehouse.conftest import Landing, warehouse_rows

SCHEMAS_SQL = "SELECT SCHEMA_NAME FROM {db}.INFORMATION_SCHEMA.SCHEMATA ORDER BY SCHEMA_NAME"


def test_objects_asset_second_run_creates_nothing(landing: Landing, snowflake: EmbeddedSnowflakeResource) -> None:
    assert {"schema SOPHIA.ANALYTICS", "schema SOPHIA.SOPHIA_MEMORY"} <= set(landing.objects_metadata["created"])
    before = warehouse_rows(snowflake, SCHEMAS_SQL.format(db="SOPHIA"))
    result = dg.materialize([database_objects], resources={"snowflake": snowflake})
    metadata = result.asset_materializations_for_node(database_objects.op.name)[0].metadata
    assert metadata["created"].value == []
    assert sorted(metadata["unchanged"].value) == [
        "database SOPHIA",
        "schema SOPHIA.ANALYTICS",
        "schema SOPHIA.RAW",
        "schema SOPHIA.SOPHIA_MEMORY",
    ]
    assert warehouse_rows(snowflake, SCHEMAS_SQL.format(db="SOPHIA")) == before


def test_apply_on_a_fresh_database_then_again(snowflake: EmbeddedSnowflakeResource) -> None:
    statements = objects.plan(objects.Objects(database="SOPHIA_OBJECTS_TEST"), embedded=True)
    with snowflake.get_connection() as conn:
        first = objects.apply(conn.cursor(), statements)
        second = objects.apply(conn.cursor(), statements)
    assert first["created"] == [
        "database SOPHIA_OBJECTS_TEST",
        "schema SOPHIA_OBJECTS_TEST.RAW",
        "schema SOPHIA_OBJECTS_TEST.ANALYTICS",
        "schema SOPHIA_OBJECTS_TEST.SOPHIA_MEMORY",
    ]
    assert second["created"] == [] and len(second["unchanged"]) == 4
    names = {row["schema_name"] for row in warehouse_rows(snowflake, SCHEMAS_SQL.format(db="SOPHIA_OBJECTS_TEST"))}
    assert {"RAW", "ANALYTICS", "SOPHIA_MEMORY"} <= names


def test_snowflake_plan_has_warehouse_roles_and_least_privilege_grants() -> None:
    statements = objects.plan(objects.Objects(), embedded=False)
    sql = [statement.sql for statement in statements]
    assert len(sql) == len(set(sql))
    creates = [s for s in sql if s.startswith("CREATE")]
    assert all(" IF NOT EXISTS " in s for s in creates)
    assert (
        "CREATE WAREHOUSE IF NOT EXISTS SOPHIA_AI_COMPUTE_WH WAREHOUSE_SIZE = 'XSMALL' AUTO_SUSPEND = 60 "
        "AUTO_RESUME = TRUE INITIALLY_SUSPENDED = TRUE" in sql
    )
    grants = {role.name: role.grants for role in objects.Objects().roles}
    assert set(grants) == {"SOPHIA_ESTUARY_ROLE", "SOPHIA_TRANSFORMER_ROLE", "SOPHIA_APP_ROLE", "SOPHIA_READER_ROLE"}
    assert "CREATE TABLE ON SCHEMA SOPHIA.RAW" in grants["SOPHIA_ESTUARY_ROLE"]
    assert not any("ANALYTICS" in grant for grant in grants["SOPHIA_ESTUARY_ROLE"])
    assert "CREATE DYNAMIC TABLE ON SCHEMA SOPHIA.ANALYTICS" in grants["SOPHIA_TRANSFORMER_ROLE"]
    assert not any("CREATE" in grant and "RAW" in grant for grant in grants["SOPHIA_TRANSFORMER_ROLE"])
    assert not any(grant.startswith(("CREATE", "INSERT")) for grant in grants["SOPHIA_READER_ROLE"])
    assert "GRANT SELECT ON FUTURE DYNAMIC TABLES IN SCHEMA SOPHIA.ANALYTICS TO ROLE SOPHIA_READER_ROLE" in sql
    assert "GRANT ROLE SOPHIA_APP_ROLE TO ROLE SYSADMIN" in sql
    assert "CREATE ROLE IF NOT EXISTS SOPHIA_APP_ROLE COMMENT = 'Sophia''s memory tiers and AI services'" in sql
    for statement in sql:
        sqlglot.parse_one(statement, read="snowflake")
    kinds = [statement.kind for statement in statements]
    assert kinds.index("database") < kinds.index("schema") < kinds.index("warehouse") < kinds.index("role")
    assert all(kinds.index("role") < index for index, kind in enumerate(kinds) if kind == "grant")

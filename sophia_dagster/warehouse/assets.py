"""Dagster assets of the warehouse layer: the database objects and one asset per analytics model.

Both use the `snowflake` resource (`SnowflakeResource`); whether the engine is the embedded one
decides the form: tables rebuilt on materialize there, dynamic tables in Snowflake.
"""

from typing import Any

import dagster as dg
from dagster_snowflake import SnowflakeResource

from sophia_dagster.warehouse import objects
from sophia_dagster.warehouse.embedded import EmbeddedSnowflakeResource
from sophia_dagster.warehouse.models import Model, create_dynamic_table_sql, create_table_sql, load_models

OBJECTS_KEY = dg.AssetKey(["snowflake", "sophia", "objects"])
GROUP = "analytics"


@dg.asset(
    key=OBJECTS_KEY,
    group_name="warehouse",
    kinds={"snowflake"},
    description="Databases, schemas, warehouse, roles and grants the platform needs; safe to run twice.",
)
def database_objects(context: dg.AssetExecutionContext, snowflake: SnowflakeResource) -> dg.MaterializeResult:
    """Create what is missing of `objects.Objects()` and report what changed."""
    statements = objects.plan(objects.Objects(), embedded=isinstance(snowflake, EmbeddedSnowflakeResource))
    with snowflake.get_connection() as conn:
        report = objects.apply(conn.cursor(), statements)
    context.log.info(f"created {report['created'] or 'nothing'}; {len(report['grants'])} grants applied")
    return dg.MaterializeResult(
        metadata={
            "created": dg.MetadataValue.json(report["created"]),
            "unchanged": dg.MetadataValue.json(report["unchanged"]),
            "grants_applied": len(report["grants"]),
        }
    )


def model_ddl(model: Model, snowflake: SnowflakeResource) -> str:
    """The statement that (re)builds `model` on the engine behind `snowflake`."""
    if isinstance(snowflake, EmbeddedSnowflakeResource):
        return create_table_sql(model)
    if not snowflake.warehouse:
        raise dg.Failure(f"model {model.name} is a dynamic table and needs a warehouse: set SNOWFLAKE_WAREHOUSE")
    return create_dynamic_table_sql(model, snowflake.warehouse)


def table_metadata(cursor: Any, table: str) -> dict[str, Any]:
    """Column schema and row count of a fully qualified table, as Dagster table metadata."""
    database, schema, name = table.split(".")
    cursor.execute(
        f"SELECT COLUMN_NAME, DATA_TYPE FROM {database}.INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (schema, name),
    )
    columns = [dg.TableColumn(name=str(column), type=str(kind)) for column, kind in cursor.fetchall()]
    cursor.execute(f"SELECT COUNT(*) FROM {table}")
    row_count = int(cursor.fetchone()[0])
    return {
        "dagster/column_schema": dg.TableSchema(columns=columns),
        "dagster/row_count": row_count,
        "dagster/table_name": table,
    }


def model_asset(model: Model) -> dg.AssetsDefinition:
    """The asset that builds `model`, depending on the tables its SQL reads and on the database objects."""

    @dg.asset(
        key=model.key,
        deps=[*model.deps, OBJECTS_KEY],
        group_name=GROUP,
        kinds={"snowflake", "sql"},
        description=model.config.description,
        freshness_policy=model.freshness_policy,
        metadata={
            "sql_file": f"sophia_dagster/warehouse/sql/{model.path.name}",
            "target_lag": model.config.target_lag,
            "refresh_mode": model.config.refresh_mode,
            "dagster/table_name": model.table,
        },
    )
    def _build(context: dg.AssetExecutionContext, snowflake: SnowflakeResource) -> dg.MaterializeResult:
        ddl = model_ddl(model, snowflake)
        with snowflake.get_connection() as conn:
            cursor = conn.cursor()
            cursor.execute(ddl)
            metadata = table_metadata(cursor, model.table)
        context.log.info(f"{model.table}: {metadata['dagster/row_count']} rows")
        return dg.MaterializeResult(metadata=metadata)

    return _build


def model_assets() -> list[dg.AssetsDefinition]:
    """One asset per SQL model in `sql/`."""
    return [model_asset(model) for model in load_models()]

"""The warehouse layer of this platform: database objects and the analytics models over the raw CDC tables."""

import dagster as dg

from sophia_dagster.warehouse.assets import database_objects, model_assets


@dg.definitions
def defs() -> dg.Definitions:
    """Assets that need the `snowflake` resource (bound in sophia_dagster/defs/resources.py)."""
    return dg.Definitions(assets=[database_objects, *model_assets()])

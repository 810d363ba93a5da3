"""This platform's Estuary assets, health checks and activity sensor, built from the catalog files here.

Loading makes no network call: the graph comes from the ``*.flow.yaml`` files alone. The ``estuary``
resource (EstuaryWorkspace in dev/prod, the embedded data plane locally) is bound by the code location.
"""

import dagster as dg

from sophia_dagster.config import PLATFORM_CATALOG_DIR, get_settings
from sophia_dagster.estuary.assets import build_estuary_assets
from sophia_dagster.estuary.catalog import load_catalog
from sophia_dagster.estuary.checks import build_estuary_checks
from sophia_dagster.estuary.sensors import build_estuary_sensor
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator


@dg.definitions
def estuary_definitions() -> dg.Definitions:
    """Sources -> collections -> Snowflake tables for every task in the platform catalog.

    The activity sensor runs by default: Estuary writes continuously, and the sensor is what shows it.
    Locally the Snowflake materialization has one op per feeding capture, so HubSpot without its token holds
    back only its own tables; against Estuary it stays one op (one publication per run).
    """
    catalog = load_catalog(PLATFORM_CATALOG_DIR)
    translator = DagsterEstuaryTranslator(owners=["team:data-platform"])
    return dg.Definitions(
        assets=build_estuary_assets(catalog, translator, op_per_capture=get_settings().environment == "local"),
        asset_checks=build_estuary_checks(catalog, translator),
        sensors=[build_estuary_sensor(catalog, translator, default_status=dg.DefaultSensorStatus.RUNNING)],
    )

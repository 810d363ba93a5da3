"""Resources by environment, chosen in one place: the asset graph is the same in local, dev and prod."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from sophia_dagster.config import Settings, get_settings
from sophia_dagster.embedded.demo import SOURCE_SETUP
from sophia_dagster.estuary.local.resource import LocalDataPlane
from sophia_dagster.estuary.resource import EstuaryRuntime, EstuaryWorkspace
from sophia_dagster.memory.resources import memory_resources
from sophia_dagster.postgres_source import source_postgres
from sophia_dagster.warehouse.resources import snowflake_resource


def local_estuary(settings: Settings) -> EstuaryRuntime:
    """The embedded data plane: the catalog's captures (HubSpot when its token is set) and warehouse, in-process."""
    dsn = dg.EnvVar("POSTGRES_DSN") if settings.postgres_dsn is not None else None
    return LocalDataPlane(
        state_dir=str(settings.state_dir),
        postgres_dsn=dsn,
        embedded_source_setup=SOURCE_SETUP,  # the demo tables: ready whichever asset runs first
        hubspot_api_url=settings.hubspot_api_url,
    )


def cloud_estuary(settings: Settings) -> EstuaryRuntime:
    """Estuary's control plane; the token is bound by variable name so the UI never shows it."""
    return EstuaryWorkspace(
        api_token=dg.EnvVar("ESTUARY_API_TOKEN"),
        pg_url=settings.estuary_pg_url,
        agent_url=settings.estuary_agent_url,
        encryption_url=settings.estuary_encryption_url,
        anon_key=settings.estuary_anon_key,
        data_plane_name=settings.estuary_data_plane,
    )


ESTUARY_BY_ENVIRONMENT: dict[str, Callable[[Settings], EstuaryRuntime]] = {
    "local": local_estuary,
    "dev": cloud_estuary,
    "prod": cloud_estuary,
}


def resources_for(settings: Settings) -> dict[str, Any]:
    """Every resource the platform's assets, checks and sensors use, for `settings.environment`."""
    return {
        "source_postgres": source_postgres(settings),
        "snowflake": snowflake_resource(settings),
        "estuary": ESTUARY_BY_ENVIRONMENT[settings.environment](settings),
        **memory_resources(settings),
    }


@dg.definitions
def resources() -> dg.Definitions:
    """The resources of the environment named by ENVIRONMENT."""
    return dg.Definitions(resources=resources_for(get_settings()))

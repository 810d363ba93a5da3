"""Resources by environment, chosen in one place: the asset graph is the same in local, dev and prod."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from sophia_dagster.config import Settings, get_settings
from sophia_dagster.estuary.resource import EstuaryWorkspace
from sophia_dagster.postgres_source import SourcePostgres
from sophia_dagster.warehouse.resources import snowflake_resource


def _secret(settings: Settings, name: str) -> dg.EnvVar | None:
    """A secret bound by variable name (exported by `get_settings`), so its value never shows in the UI."""
    return dg.EnvVar(name.upper()) if getattr(settings, name) is not None else None


def local_resources(settings: Settings) -> dict[str, Any]:
    """Embedded engines and the in-process Estuary data plane."""
    return {
        "source_postgres": SourcePostgres(dsn=_secret(settings, "postgres_dsn"), state_dir=str(settings.state_dir)),
        "snowflake": snowflake_resource(settings),
    }


def cloud_resources(settings: Settings) -> dict[str, Any]:
    """Estuary's control plane, Snowflake and the production database."""
    return {
        "source_postgres": SourcePostgres(dsn=_secret(settings, "postgres_dsn"), state_dir=str(settings.state_dir)),
        "snowflake": snowflake_resource(settings),
        "estuary": EstuaryWorkspace(
            api_token=dg.EnvVar("ESTUARY_API_TOKEN"),
            pg_url=settings.estuary_pg_url,
            agent_url=settings.estuary_agent_url,
            encryption_url=settings.estuary_encryption_url,
            anon_key=settings.estuary_anon_key,
            data_plane_name=settings.estuary_data_plane,
        ),
    }


RESOURCES_BY_ENVIRONMENT: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "local": local_resources,
    "dev": cloud_resources,
    "prod": cloud_resources,
}


@dg.definitions
def resources() -> dg.Definitions:
    """The resources of the environment named by ENVIRONMENT."""
    settings = get_settings()
    return dg.Definitions(resources=RESOURCES_BY_ENVIRONMENT[settings.environment](settings))

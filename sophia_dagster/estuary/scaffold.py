"""``dg scaffold defs ...EstuaryCatalogComponent <path>``: a ``defs.yaml`` and, unless one is named, a starter catalog."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster.components.component_scaffolding import scaffold_component
from pydantic import BaseModel, Field

STARTER_CATALOG = "catalog.flow.yaml"
STARTER_TEXT = """\
# A starter Estuary catalog in flow.yaml format: one PostgreSQL capture into one collection, materialized
# into Snowflake. Secrets are ${ENV_VAR} placeholders, resolved only when publishing.
captures:
  acme/postgres-cdc:
    endpoint:
      connector:
        image: ghcr.io/estuary/source-postgres:v3
        config:
          address: ${POSTGRES_CAPTURE_ADDRESS}
          database: acme
          user: flow_capture
          credentials: {auth_type: UserPassword, password: "${POSTGRES_CAPTURE_PASSWORD}"}
    bindings:
      - resource: {namespace: public, stream: orders}
        target: acme/postgres-cdc/orders

collections:
  acme/postgres-cdc/orders:
    key: [/id]
    schema:
      type: object
      required: [id]
      properties:
        id: {type: integer}
        amount: {type: [string, "null"], format: number}
        updated_at: {type: string, format: date-time}

materializations:
  acme/snowflake:
    endpoint:
      connector:
        image: ghcr.io/estuary/materialize-snowflake:v4
        config:
          host: ${SNOWFLAKE_HOST}
          database: ACME
          schema: RAW
          credentials: {auth_type: jwt, user: FLOW, privateKey: "${SNOWFLAKE_PRIVATE_KEY}"}
    bindings:
      - resource: {table: orders}
        source: acme/postgres-cdc/orders
"""


class EstuaryScaffoldParams(BaseModel):
    """What ``dg scaffold defs ... --json-params`` accepts."""

    catalog_path: str | None = Field(
        default=None, description="An existing catalog, relative to the new folder; a starter catalog when omitted."
    )
    api_token_env: str = Field(default="ESTUARY_API_TOKEN", description="Variable holding the Estuary token.")


class EstuaryCatalogScaffolder(dg.Scaffolder[EstuaryScaffoldParams]):
    """Writes a ``defs.yaml`` whose catalog loads and whose workspace reads its token from the environment."""

    @classmethod
    def get_scaffold_params(cls) -> type[EstuaryScaffoldParams]:
        return EstuaryScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[EstuaryScaffoldParams]) -> None:
        params = request.params or EstuaryScaffoldParams()
        catalog = params.catalog_path
        if catalog is None:
            Path(request.target_path, STARTER_CATALOG).write_text(STARTER_TEXT, encoding="utf-8")
            catalog = STARTER_CATALOG
        attributes = {"catalog_paths": [catalog], "workspace": {"api_token_env": params.api_token_env}}
        scaffold_component(request, attributes)

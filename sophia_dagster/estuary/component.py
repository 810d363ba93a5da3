"""``EstuaryCatalogComponent``: an Estuary catalog's assets, checks and sensor, configured from a ``defs.yaml``.

Example ``defs.yaml``::

    type: sophia_dagster.estuary.EstuaryCatalogComponent
    attributes:
      catalog_paths: [flows]
      tasks:
        by_pattern: "acme/.*"
      translation:
        group_name: "{{ binding.connector.name | replace('-', '_') }}"
        owners: [team:data]
      workspace:
        api_token_env: ESTUARY_API_TOKEN
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import dagster as dg
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver
from pydantic import Field

from sophia_dagster.estuary.catalog import Catalog, load_catalog
from sophia_dagster.estuary.definitions import build_estuary_definitions
from sophia_dagster.estuary.runtime import RESOURCE_KEY
from sophia_dagster.estuary.scaffold import EstuaryCatalogScaffolder
from sophia_dagster.estuary.specs import select_tasks
from sophia_dagster.estuary.translator import EstuaryBinding
from sophia_dagster.estuary.workspace import EstuaryWorkspace


class TaskSelector(dg.Model):
    """Which tasks of the catalog become assets: those named, and those whose name matches the pattern."""

    by_name: list[str] = Field(default_factory=list, description="Catalog names of tasks, e.g. acme/postgres-cdc.")
    by_pattern: str | None = Field(default=None, description="A regular expression a whole task name must match.")


class EstuaryWorkspaceArgs(dg.Model):
    """The control plane connection the component binds, named in ``defs.yaml`` (never the token itself)."""

    api_token_env: str = Field(description="Environment variable holding the Estuary refresh token.")
    pg_url: str | None = None
    agent_url: str | None = None
    encryption_url: str | None = None
    data_plane_name: str | None = None
    publication_detail: str | None = None


def resolve_workspace(context: dg.ResolutionContext, args: EstuaryWorkspaceArgs) -> EstuaryWorkspace:
    """An :class:`EstuaryWorkspace` whose token is read from the named variable when a run starts."""
    settings = context.resolve_value(args.model_dump(exclude_none=True, exclude={"api_token_env"}))
    return EstuaryWorkspace(api_token=dg.EnvVar(args.api_token_env), **settings)


@dg.scaffold_with(EstuaryCatalogScaffolder)
class EstuaryCatalogComponent(dg.Component, dg.Model, dg.Resolvable):
    """Estuary Flow captures and materializations of a catalog as Dagster assets, with health checks and a sensor.

    Each capture or materialization becomes one subsettable multi-asset: sources -> collections -> destination
    tables. The runtime (the ``estuary`` resource) publishes and runs the same catalog the graph was built from.

    Args:
        catalog_paths: ``flow.yaml`` files or directories of ``*.flow.yaml``, relative to this ``defs.yaml``.
        tasks: which tasks to include (by name, by pattern); all when omitted.
        translation: attributes of each spec (key, group_name, owners, kinds, tags, ...), templated with
            ``binding`` (task, index, collection, resource, connector) and ``spec``.
        health_checks: give each task's assets an ``estuary_task_healthy`` check.
        activity_sensor: include the activity sensor (reports what Estuary wrote; runs checks of failing tasks).
        sensor_running: start the sensor when the code location loads.
        resource_key: the resource key of the runtime.
        workspace: bind an :class:`EstuaryWorkspace` under ``resource_key``; omit it when the code location
            binds a runtime per environment.
        op_per_capture: give a materialization fed by several captures one op per capture, so a capture that
            does not run holds back only its own tables. Only for a runtime that runs captures in-process (an
            embedded data plane): against Estuary each op publishes the task, and concurrent publications of one
            task conflict. A template var can set it per environment (``"{{ runs_captures_in_process }}"``).

    Example:
        ``dg scaffold defs sophia_dagster.estuary.EstuaryCatalogComponent estuary`` writes a ``defs.yaml`` and a
        starter catalog; ``dg list defs`` then shows its assets.
    """

    catalog_paths: list[str] = Field(default_factory=lambda: ["."], description="Catalog files or directories.")
    tasks: TaskSelector | None = None
    translation: (
        Annotated[
            TranslationFn[EstuaryBinding],
            TranslationFnResolver[EstuaryBinding](
                template_vars_for_translation_fn=lambda binding: {"binding": binding}
            ),
        ]
        | None
    ) = None
    health_checks: bool = True
    activity_sensor: bool = True
    sensor_running: bool = False
    resource_key: str = RESOURCE_KEY
    workspace: (
        Annotated[EstuaryWorkspace, dg.Resolver(resolve_workspace, model_field_type=EstuaryWorkspaceArgs)] | None
    ) = None
    op_per_capture: bool = False

    def load_catalog(self, root: Path) -> Catalog:
        """The catalog of ``catalog_paths``, read relative to ``root`` (the folder of the ``defs.yaml``)."""
        return load_catalog([root / path for path in self.catalog_paths])

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        catalog = self.load_catalog(context.path)
        selected = select_tasks(catalog, self.tasks.by_name, self.tasks.by_pattern) if self.tasks else None
        return build_estuary_definitions(
            catalog=catalog,
            tasks=selected,
            translation=self.translation,
            health_checks=self.health_checks,
            activity_sensor=self.activity_sensor,
            sensor_status=dg.DefaultSensorStatus.RUNNING if self.sensor_running else dg.DefaultSensorStatus.STOPPED,
            resource_key=self.resource_key,
            runtime=self.workspace,
            op_per_capture=self.op_per_capture,
        )

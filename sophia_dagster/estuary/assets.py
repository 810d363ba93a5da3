"""One subsettable multi-asset per Estuary task, plus the external source tables the captures read."""

from collections.abc import Iterator

import dagster as dg

from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.estuary.errors import PublicationFailedError
from sophia_dagster.estuary.metadata import EstuaryMetadataSet
from sophia_dagster.estuary.runtime import RESOURCE_KEY, EstuaryRuntime
from sophia_dagster.estuary.specs import EstuarySpecs, task_op_name
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator


def failure_from(exc: PublicationFailedError) -> dg.Failure:
    """A step failure carrying Estuary's errors as metadata."""
    return dg.Failure(
        description=str(exc),
        metadata={
            **EstuaryMetadataSet(
                pub_id=exc.pub_id,
                status=exc.status,
                errors=dg.MetadataValue.json([e.model_dump() for e in exc.errors]),
            )
        },
    )


def build_task_asset(specs: EstuarySpecs, task: str, resource_key: str = RESOURCE_KEY) -> dg.AssetsDefinition:
    """The multi-asset of one task; materializing a subset still runs the task, reporting only the subset.

    The runtime is handed the catalog the specs came from, so what runs is what the graph shows.
    """
    index = {bound.spec.key: bound.binding.index for bound in specs.tasks[task]}
    catalog = specs.catalog

    @dg.multi_asset(
        name=task_op_name(task),
        specs=specs.task_specs(task),
        can_subset=True,
        required_resource_keys={resource_key},
        description=f"Estuary {catalog.spec_type(task)} {task}",
    )
    def _task(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        runtime: EstuaryRuntime = getattr(context.resources, resource_key)
        runtime.use_catalog(catalog)
        selected = {key: index[key] for key in context.selected_asset_keys}
        try:
            yield from runtime.materialize(context, task, selected)
        except PublicationFailedError as exc:
            raise failure_from(exc) from None

    return _task


def assets_from_specs(
    specs: EstuarySpecs, resource_key: str = RESOURCE_KEY
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """Source specs plus one multi-asset per task of ``specs``."""
    return [*specs.sources, *(build_task_asset(specs, task, resource_key) for task in specs.tasks)]


def build_estuary_assets(
    *, catalog: Catalog, translator: DagsterEstuaryTranslator | None = None, resource_key: str = RESOURCE_KEY
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """Assets for every task of an Estuary catalog: sources -> collections -> destination tables.

    Args:
        catalog: the loaded catalog (``load_catalog("flows/")``); the runtime publishes this same catalog.
        translator: turns bindings into AssetSpecs; subclass :class:`DagsterEstuaryTranslator` to change keys.
        resource_key: the key the :class:`EstuaryRuntime` resource is bound under.

    Returns:
        External source specs, then one subsettable multi-asset per capture and materialization.

    Example:
        ``dg.Definitions(assets=build_estuary_assets(catalog=load_catalog("flows/")), resources={"estuary": ...})``
    """
    return assets_from_specs(EstuarySpecs.build(catalog, translator), resource_key)

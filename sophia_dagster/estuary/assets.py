"""One subsettable multi-asset per Estuary task, plus the external source tables the captures read."""

from collections.abc import Iterator

import dagster as dg

from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.estuary.errors import PublicationFailedError
from sophia_dagster.estuary.metadata import EstuaryMetadataSet
from sophia_dagster.estuary.runtime import RESOURCE_KEY, EstuaryRuntime
from sophia_dagster.estuary.specs import BoundSpec, EstuarySpecs
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


def build_task_assets(specs: EstuarySpecs, task: str, resource_key: str = RESOURCE_KEY) -> list[dg.AssetsDefinition]:
    """The multi-assets of one task, one per op of :meth:`EstuarySpecs.task_ops`; materializing a subset still runs
    the task, reporting only the subset. A runtime may leave out assets it cannot materialize (they are skippable).

    The runtime is handed the catalog the specs came from, so what runs is what the graph shows.
    """
    description = f"Estuary {specs.catalog.spec_type(task)} {task}"
    return [
        _task_asset(specs.catalog, task, op_name, bound, description, resource_key)
        for op_name, bound in specs.task_ops(task).items()
    ]


def _task_asset(
    catalog: Catalog,
    task: str,
    op_name: str,
    bound: tuple[BoundSpec, ...],
    description: str,
    resource_key: str,
) -> dg.AssetsDefinition:
    index = {b.spec.key: b.binding.index for b in bound}

    @dg.multi_asset(
        name=op_name,
        specs=[b.spec.replace_attributes(skippable=True) for b in bound],
        can_subset=True,
        required_resource_keys={resource_key},
        description=description,
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
    """Source specs plus the multi-assets of every task of ``specs``."""
    return [*specs.sources, *(asset for task in specs.tasks for asset in build_task_assets(specs, task, resource_key))]


def build_estuary_assets(
    *,
    catalog: Catalog,
    translator: DagsterEstuaryTranslator | None = None,
    resource_key: str = RESOURCE_KEY,
    op_per_capture: bool = False,
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """Assets for every task of an Estuary catalog: sources -> collections -> destination tables.

    Args:
        catalog: the loaded catalog (``load_catalog("flows/")``); the runtime publishes this same catalog.
        translator: turns bindings into AssetSpecs; subclass :class:`DagsterEstuaryTranslator` to change keys.
        resource_key: the key the :class:`EstuaryRuntime` resource is bound under.
        op_per_capture: give a materialization fed by several captures one op per capture, for a runtime that
            runs captures in-process (see :meth:`EstuarySpecs.task_ops`); keep it off against Estuary.

    Returns:
        External source specs, then one subsettable multi-asset per capture and materialization (per feeding
        capture of a materialization with ``op_per_capture``).

    Example:
        ``dg.Definitions(assets=build_estuary_assets(catalog=load_catalog("flows/")), resources={"estuary": ...})``
    """
    return assets_from_specs(EstuarySpecs.build(catalog, translator, op_per_capture=op_per_capture), resource_key)

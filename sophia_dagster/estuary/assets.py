"""One subsettable multi-asset per Estuary task, plus the external source tables the captures read."""

from collections.abc import Iterator

import dagster as dg

from sophia_dagster.estuary.catalog import SECTIONS, Catalog, CatalogError, CatalogIssue
from sophia_dagster.estuary.errors import PublicationFailedError
from sophia_dagster.estuary.runtime import RESOURCE_KEY, EstuaryRuntime
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator, safe_name, task_bindings


def build_source_specs(catalog: Catalog, translator: DagsterEstuaryTranslator) -> list[dg.AssetSpec]:
    """External AssetSpecs for every table/object a capture reads (deduplicated by key)."""
    specs: dict[dg.AssetKey, dg.AssetSpec] = {}
    for task in catalog.captures:
        for binding in task_bindings(catalog, task):
            spec = translator.get_source_spec(binding)
            specs.setdefault(spec.key, spec)
    return list(specs.values())


def task_op_name(task: str) -> str:
    """The op name of a task's multi-asset (``acme/postgres-cdc`` -> ``estuary_acme_postgres_cdc``)."""
    return f"estuary_{safe_name(task)}"


def failure_from(exc: PublicationFailedError) -> dg.Failure:
    """A step failure carrying Estuary's errors as metadata."""
    return dg.Failure(
        description=str(exc),
        metadata={
            "estuary/pub_id": dg.MetadataValue.text(exc.pub_id),
            "estuary/status": dg.MetadataValue.text(exc.status),
            "estuary/errors": dg.MetadataValue.json([e.model_dump() for e in exc.errors]),
        },
    )


def build_task_asset(
    catalog: Catalog, task: str, translator: DagsterEstuaryTranslator, resource_key: str = RESOURCE_KEY
) -> dg.AssetsDefinition:
    """The multi-asset of one task; materializing a subset still runs the task, reporting only the subset."""
    specs = translator.get_task_specs(catalog, task)
    index = {spec.key: binding.index for spec, binding in zip(specs, task_bindings(catalog, task), strict=True)}

    @dg.multi_asset(
        name=task_op_name(task),
        specs=specs,
        can_subset=True,
        required_resource_keys={resource_key},
        description=f"Estuary {catalog.spec_type(task)} {task}",
    )
    def _task(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        runtime: EstuaryRuntime = getattr(context.resources, resource_key)
        selected = {key: index[key] for key in context.selected_asset_keys}
        try:
            yield from runtime.materialize(context, task, selected)
        except PublicationFailedError as exc:
            raise failure_from(exc) from None

    return _task


def build_estuary_assets(
    catalog: Catalog, translator: DagsterEstuaryTranslator | None = None, resource_key: str = RESOURCE_KEY
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """Source specs plus one multi-asset per capture and materialization of ``catalog``."""
    translator = translator or DagsterEstuaryTranslator()
    check_unique_names(catalog, translator)
    tasks = [build_task_asset(catalog, task, translator, resource_key) for task in catalog.tasks]
    return [*build_source_specs(catalog, translator), *tasks]


def check_unique_names(catalog: Catalog, translator: DagsterEstuaryTranslator) -> None:
    """Each asset key must come from one binding and each task must get its own op name; else a catalog error."""
    producers: dict[dg.AssetKey, str] = {}
    ops: dict[str, str] = {}
    issues = []
    for task in catalog.tasks:
        where = (catalog.files[task], f"{SECTIONS[catalog.spec_type(task)]}.{task}")
        if (op := task_op_name(task)) in ops:
            issues.append(CatalogIssue(*where, f"its Dagster name {op} is also the name of {ops[op]}"))
        ops.setdefault(op, task)
        for spec in translator.get_task_specs(catalog, task):
            if spec.key in producers:
                issues.append(
                    CatalogIssue(*where, f"asset {spec.key.to_user_string()} is also produced by {producers[spec.key]}")
                )
            producers.setdefault(spec.key, task)
    if issues:
        raise CatalogError(issues)

"""One subsettable multi-asset per Estuary task, plus the external source tables the captures read."""

from collections.abc import Iterator

import dagster as dg

from sophia_dagster.estuary.catalog import SECTIONS, Catalog, CatalogError, CatalogIssue
from sophia_dagster.estuary.errors import PublicationFailed
from sophia_dagster.estuary.resource import RESOURCE_KEY, EstuaryRuntime
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
    """The op name of a task's multi-asset (``sophia/postgres-cdc`` -> ``estuary_sophia_postgres_cdc``)."""
    return f"estuary_{safe_name(task)}"


def binding_groups(catalog: Catalog, task: str) -> dict[str, list[int]]:
    """A task's binding indexes by the op that materializes them, keyed by op name.

    A capture is one op. A materialization reading collections of several captures gets one op per
    capture (``estuary_sophia_snowflake__sophia_hubspot``): Dagster skips a step when an upstream step did
    not produce its input, so a capture that does not run (HubSpot without a token) holds back only the
    tables it feeds, never the others.
    """
    if task in catalog.captures:
        return {task_op_name(task): list(range(len(catalog.collections_of(task))))}
    producer = {binding.target: name for name, capture in catalog.captures.items() for binding in capture.bindings}
    groups: dict[str, list[int]] = {}
    for index, collection in enumerate(catalog.collections_of(task)):
        groups.setdefault(producer.get(collection, task), []).append(index)
    if len(groups) == 1:
        return {task_op_name(task): next(iter(groups.values()))}
    return {f"{task_op_name(task)}__{safe_name(source)}": indexes for source, indexes in groups.items()}


def failure_from(exc: PublicationFailed) -> dg.Failure:
    """A step failure carrying Estuary's errors as metadata."""
    return dg.Failure(
        description=str(exc),
        metadata={
            "estuary/pub_id": dg.MetadataValue.text(exc.pub_id),
            "estuary/status": dg.MetadataValue.text(exc.status),
            "estuary/errors": dg.MetadataValue.json([e.model_dump() for e in exc.errors]),
        },
    )


def build_task_assets(
    catalog: Catalog, task: str, translator: DagsterEstuaryTranslator, resource_key: str = RESOURCE_KEY
) -> list[dg.AssetsDefinition]:
    """The multi-assets of one task (see :func:`binding_groups`); materializing a subset still runs the task,
    reporting only the subset. A runtime may leave out assets it cannot materialize (they are skippable)."""
    specs = [spec.replace_attributes(skippable=True) for spec in translator.get_task_specs(catalog, task)]
    description = f"Estuary {catalog.spec_type(task)} {task}"
    return [
        _task_asset(task, op_name, [(specs[i], i) for i in indexes], description, resource_key)
        for op_name, indexes in binding_groups(catalog, task).items()
    ]


def _task_asset(
    task: str, op_name: str, specs: list[tuple[dg.AssetSpec, int]], description: str, resource_key: str
) -> dg.AssetsDefinition:
    index = {spec.key: i for spec, i in specs}

    @dg.multi_asset(
        name=op_name,
        specs=[spec for spec, _ in specs],
        can_subset=True,
        required_resource_keys={resource_key},
        description=description,
    )
    def _task(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        runtime: EstuaryRuntime = getattr(context.resources, resource_key)
        selected = {key: index[key] for key in context.selected_asset_keys}
        try:
            yield from runtime.materialize(context, task, selected)
        except PublicationFailed as exc:
            raise failure_from(exc) from None

    return _task


def build_estuary_assets(
    catalog: Catalog, translator: DagsterEstuaryTranslator | None = None, resource_key: str = RESOURCE_KEY
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """Source specs plus one multi-asset per capture and materialization of ``catalog``."""
    translator = translator or DagsterEstuaryTranslator()
    check_unique_names(catalog, translator)
    tasks = [asset for task in catalog.tasks for asset in build_task_assets(catalog, task, translator, resource_key)]
    return [*build_source_specs(catalog, translator), *tasks]


def check_unique_names(catalog: Catalog, translator: DagsterEstuaryTranslator) -> None:
    """Each asset key must come from one binding and each task must get its own op name; else a catalog error."""
    producers: dict[dg.AssetKey, str] = {}
    ops: dict[str, str] = {}
    issues = []
    for task in catalog.tasks:
        where = (catalog.files[task], f"{SECTIONS[catalog.spec_type(task)]}.{task}")
        for op in binding_groups(catalog, task):
            if op in ops:
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

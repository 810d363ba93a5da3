"""Every AssetSpec of a catalog, computed once and shared by the asset, check and sensor builders."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import dagster as dg

from sophia_dagster.estuary.catalog import SECTIONS, Catalog
from sophia_dagster.estuary.errors import CatalogError, CatalogIssue
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator, EstuaryBinding, safe_name, task_bindings

Translation = Callable[[dg.AssetSpec, EstuaryBinding], dg.AssetSpec]
"""A function from the translator's spec of one binding to the spec to use (what a component's ``translation`` is)."""


def task_op_name(task: str) -> str:
    """The op name of a task's multi-asset (``acme/postgres-cdc`` -> ``estuary_acme_postgres_cdc``)."""
    return f"estuary_{safe_name(task)}"


@dataclass(frozen=True)
class BoundSpec:
    """The spec of one binding of a task, with the binding it describes."""

    binding: EstuaryBinding
    spec: dg.AssetSpec


@dataclass(frozen=True)
class EstuarySpecs:
    """The specs of the selected tasks of a catalog: external sources, and each task's specs in binding order.

    ``op_per_capture`` gives a materialization reading collections of several captures one op per capture
    (see :meth:`task_ops`).
    """

    catalog: Catalog
    sources: tuple[dg.AssetSpec, ...]
    tasks: Mapping[str, tuple[BoundSpec, ...]]
    op_per_capture: bool = False

    @classmethod
    def build(
        cls,
        catalog: Catalog,
        translator: DagsterEstuaryTranslator | None = None,
        *,
        tasks: Iterable[str] | None = None,
        translation: Translation | None = None,
        op_per_capture: bool = False,
    ) -> EstuarySpecs:
        """Translate every binding of ``tasks`` (all tasks when None) once; deps follow keys that ``translation`` moved.

        Raises:
            CatalogError: when two bindings yield the same asset key or two ops the same name.
        """
        translator = translator or DagsterEstuaryTranslator()
        names = list(catalog.tasks) if tasks is None else list(tasks)
        translate = translation or (lambda spec, _: spec)
        moved: dict[dg.AssetKey, dg.AssetKey] = {}

        def apply(spec: dg.AssetSpec, binding: EstuaryBinding) -> dg.AssetSpec:
            translated = translate(spec, binding)
            moved[spec.key] = translated.key
            return translated

        sources: dict[dg.AssetKey, dg.AssetSpec] = {}
        for task in names:
            if task in catalog.captures:
                for binding in task_bindings(catalog, task):
                    spec = translator.get_source_spec(binding)
                    if spec.key not in sources:
                        sources[spec.key] = apply(spec, binding)
        bound = {
            task: tuple(
                BoundSpec(binding, apply(spec, binding))
                for spec, binding in zip(
                    translator.get_task_specs(catalog, task), task_bindings(catalog, task), strict=True
                )
            )
            for task in names
        }
        specs = cls(
            catalog, tuple(_follow(s, moved) for s in sources.values()), _follow_all(bound, moved), op_per_capture
        )
        specs.check_unique_names()
        return specs

    def task_specs(self, task: str) -> list[dg.AssetSpec]:
        """The specs a task's multi-asset produces."""
        return [bound.spec for bound in self.tasks[task]]

    def task_ops(self, task: str) -> dict[str, tuple[BoundSpec, ...]]:
        """A task's specs by the op that materializes them, keyed by op name.

        One op per task, unless ``op_per_capture``: then a materialization reading collections of several
        captures gets one op per capture (``estuary_acme_snowflake__acme_hubspot``). Dagster skips a step when
        an upstream step did not produce its input, so split ops let a capture that does not run hold back only
        the tables it feeds. Keep one op against Estuary's control plane: each op publishes its task, and two
        concurrent publications of one task conflict.
        """
        bound = self.tasks[task]
        if task in self.catalog.captures or not self.op_per_capture:
            return {task_op_name(task): bound}
        producer = {b.target: name for name, capture in self.catalog.captures.items() for b in capture.bindings}
        groups: dict[str, list[BoundSpec]] = {}
        for spec in bound:
            groups.setdefault(producer.get(spec.binding.collection, task), []).append(spec)
        if len(groups) == 1:
            return {task_op_name(task): bound}
        return {f"{task_op_name(task)}__{safe_name(source)}": tuple(specs) for source, specs in groups.items()}

    def check_keys(self, task: str, check_name: str) -> list[dg.AssetCheckKey]:
        """One check key named ``check_name`` per asset the task produces."""
        return [dg.AssetCheckKey(spec.key, check_name) for spec in self.task_specs(task)]

    def check_unique_names(self) -> None:
        """Each asset key must come from one binding and each task must get its own op name; else a catalog error."""
        producers: dict[dg.AssetKey, str] = {}
        ops: dict[str, str] = {}
        issues = []
        for task in self.tasks:
            where = (self.catalog.files[task], f"{SECTIONS[self.catalog.spec_type(task)]}.{task}")
            for op in self.task_ops(task):
                if op in ops:
                    issues.append(CatalogIssue(*where, f"its Dagster name {op} is also the name of {ops[op]}"))
                ops.setdefault(op, task)
            for spec in self.task_specs(task):
                if spec.key in producers:
                    issues.append(
                        CatalogIssue(
                            *where, f"asset {spec.key.to_user_string()} is also produced by {producers[spec.key]}"
                        )
                    )
                producers.setdefault(spec.key, task)
        if issues:
            raise CatalogError(issues)


def select_tasks(catalog: Catalog, names: Iterable[str] = (), pattern: str | None = None) -> list[str]:
    """The catalog's tasks named in ``names`` or whose name matches the regular expression ``pattern``.

    Raises:
        CatalogError: naming every name that is not a task of the catalog.
    """
    wanted = list(names)
    unknown = [name for name in wanted if name not in catalog.tasks]
    if unknown:
        raise CatalogError(
            [CatalogIssue("<task selector>", "by_name", f"not a task of the catalog: {n}") for n in unknown]
        )
    matcher = re.compile(pattern) if pattern is not None else None
    return [task for task in catalog.tasks if task in wanted or (matcher is not None and matcher.fullmatch(task))]


def _follow(spec: dg.AssetSpec, moved: Mapping[dg.AssetKey, dg.AssetKey]) -> dg.AssetSpec:
    """``spec`` with each dependency on a key that translation moved pointed at the new key."""
    if not any(dep.asset_key in moved and moved[dep.asset_key] != dep.asset_key for dep in spec.deps):
        return spec
    return spec.replace_attributes(deps=[moved.get(dep.asset_key, dep.asset_key) for dep in spec.deps])


def _follow_all(
    bound: Mapping[str, tuple[BoundSpec, ...]], moved: Mapping[dg.AssetKey, dg.AssetKey]
) -> dict[str, tuple[BoundSpec, ...]]:
    return {task: tuple(BoundSpec(b.binding, _follow(b.spec, moved)) for b in specs) for task, specs in bound.items()}

"""Draft assembly: which specs a publication of some tasks stages, with placeholders resolved for sending."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sophia_dagster.estuary.catalog import SECTIONS, Catalog, iter_placeholders, resolve_placeholders
from sophia_dagster.estuary.errors import EstuaryError
from sophia_dagster.estuary.publication import ZERO_PUB_ID, DraftSpec


def publication_names(catalog: Catalog, tasks: Sequence[str], where: str) -> list[str]:
    """The tasks followed by every collection they bind, each once; unknown tasks are an error naming ``where``."""
    unknown = [name for name in tasks if name not in catalog.tasks]
    if unknown:
        raise EstuaryError(f"not tasks of the catalog at {where}: {', '.join(unknown)}")
    return list(dict.fromkeys([*tasks, *(c for task in tasks for c in catalog.collections_of(task))]))


def resolved_spec(
    catalog: Catalog, name: str, env: Mapping[str, str], redact: Callable[[Iterable[str]], None]
) -> dict[str, Any]:
    """The spec with placeholders filled from ``env``; the values used are handed to ``redact`` first."""
    spec = catalog.spec(name)
    redact(env[var] for var, _ in iter_placeholders(spec) if var in env)
    return resolve_placeholders(spec, env, catalog.files[name], (SECTIONS[catalog.spec_type(name)], name))


def draft_specs(
    catalog: Catalog,
    names: Sequence[str],
    live_pub_ids: Mapping[str, str],
    env: Mapping[str, str],
    redact: Callable[[Iterable[str]], None],
) -> list[DraftSpec]:
    """One draft spec per name, guarded by its live pub_id (the zero id for a spec not yet live)."""
    return [
        DraftSpec(
            name,
            catalog.spec_type(name),
            resolved_spec(catalog, name, env, redact),
            live_pub_ids.get(name, ZERO_PUB_ID),
        )
        for name in names
    ]

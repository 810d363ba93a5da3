"""``${ENV_VAR}`` placeholders: secrets stay out of catalog files and are only substituted at publish time."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sophia_dagster.estuary.errors import CatalogError, CatalogIssue, PathPart, format_path

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def iter_placeholders(value: Any, path: Sequence[PathPart] = ()) -> Iterator[tuple[str, str]]:
    """Yield ``(variable, spec path)`` for every ``${VAR}`` placeholder inside ``value``."""
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            yield match.group(1), format_path(path)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from iter_placeholders(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_placeholders(item, (*path, index))


def resolve_placeholders(spec: Any, env: Mapping[str, str], file: str, path: Sequence[PathPart]) -> Any:
    """Return ``spec`` with every ``${VAR}`` replaced from ``env``; call only when publishing.

    A missing variable raises :class:`CatalogError` naming the variable and the spec path, never a value.
    """
    missing = [
        CatalogIssue(file, where, f"environment variable {var} is not set")
        for var, where in iter_placeholders(spec, path)
        if var not in env
    ]
    if missing:
        raise CatalogError(missing)
    return _substitute(spec, env)


def _substitute(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda match: env[match.group(1)], value)
    if isinstance(value, Mapping):
        return {key: _substitute(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, env) for item in value]
    return value

"""Catalog forms Estuary knows but this integration cannot publish, each refused with why, file and path.

A spec using one of these forms is left out of the loaded catalog and reported as a ``not supported``
:class:`~sophia_dagster.estuary.errors.CatalogIssue`, so the user reads the reason instead of a schema error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sophia_dagster.estuary.errors import CatalogIssue, format_path

LOCAL = (
    "a local connector (endpoint.local) runs a command on the developer's machine; Estuary's control plane "
    "publishes only connector images (endpoint.connector)"
)
UNSUPPORTED: tuple[tuple[tuple[str, ...], str], ...] = (
    (("captures", "*", "endpoint", "local"), LOCAL),
    (("materializations", "*", "endpoint", "local"), LOCAL),
    (("collections", "*", "derive", "using", "local"), LOCAL),
    (
        ("collections", "*", "derivation"),
        (
            "the old derivation syntax ('derivation:' with register/transform/publish lambdas), which Estuary "
            "replaced with 'derive:' (using sqlite, typescript or python, and a list of transforms)"
        ),
    ),
    (
        ("materializations", "*", "endpoint", "dekaf"),
        "a Dekaf endpoint (endpoint.dekaf): this integration publishes and monitors connector images only",
    ),
    (("storageMappings",), "storage mappings are administered in Estuary, not published with a catalog"),
)
LIST_OF_COLLECTIONS = (
    "collections given as a list of {name: ...} entries, an old catalog syntax; Estuary reads a mapping of "
    "collection name to collection"
)


def _matches(data: Any, pattern: tuple[str, ...], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if not pattern:
        yield path
        return
    if not isinstance(data, dict):
        return
    head, rest = pattern[0], pattern[1:]
    keys = [k for k in data if isinstance(data[k], dict) or not rest] if head == "*" else [head] * (head in data)
    for key in keys:
        yield from _matches(data[key], rest, (*path, key))


def refuse_unsupported(data: dict[str, Any], file: str) -> list[CatalogIssue]:
    """Report every unsupported form in one file's data and drop the specs using them (``data`` is changed).

    Args:
        data: the parsed file.
        file: its path, for messages.

    Example:
        >>> data = {"captures": {"a/b": {"endpoint": {"local": {}}}}}
        >>> [i.path for i in refuse_unsupported(data, "flow.yaml")], data
        (['captures.a/b.endpoint.local'], {'captures': {}})
    """
    issues = []
    if isinstance(data.get("collections"), list):
        issues.append(CatalogIssue(file, "collections", f"not supported: {LIST_OF_COLLECTIONS}"))
        data["collections"] = {}
    for pattern, reason in UNSUPPORTED:
        for path in list(_matches(data, pattern)):
            issues.append(CatalogIssue(file, format_path(path), f"not supported: {reason}"))
            if len(path) == 1:
                data.pop(path[0], None)
            else:
                data[path[0]].pop(path[1], None)
    return issues

"""Where things live in a spec's JSON: the shard template and the connector of captures, materializations
and derivations (a derivation keeps both under ``derive``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def task_holder(spec: Mapping[str, Any]) -> Any:
    """The object holding ``shards`` and the connector: the spec, or its ``derive`` for a derivation."""
    return spec["derive"] if isinstance(spec.get("derive"), dict) else spec


def connector_of(spec: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``connector`` object (with a config object) of a capture, materialization or connector derivation."""
    holder = task_holder(spec or {})
    connector = (holder.get("endpoint") or holder.get("using") or {}).get("connector")
    return connector if isinstance(connector, dict) and isinstance(connector.get("config"), dict) else None

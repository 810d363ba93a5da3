"""Where an asset value lives in a memory tier: asset key path, partition and the asset's metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

TTL_METADATA_KEY = "memory/ttl_seconds"


@dataclass(frozen=True)
class OutputRef:
    """One stored value: an asset (by key path), optionally one of its partitions."""

    asset: tuple[str, ...]
    partition: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The asset key as `a/b/c`."""
        return "/".join(self.asset)

    @property
    def partition_label(self) -> str:
        """The partition key, or the empty string for an unpartitioned asset."""
        return self.partition or ""

    @property
    def ttl_seconds(self) -> int | None:
        """The asset's own cache TTL (definition metadata `memory/ttl_seconds`), if it sets one."""
        value = self.metadata.get(TTL_METADATA_KEY)
        value = getattr(value, "value", value)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"asset {self.name}: metadata {TTL_METADATA_KEY} must be a positive int, got {value!r}")
        return value

    def __str__(self) -> str:
        return f"asset {self.name}" + (f" partition {self.partition}" if self.partition else "")


def _asset_path(context: dg.OutputContext | dg.InputContext) -> tuple[str, ...]:
    if not context.has_asset_key:
        raise dg.DagsterInvariantViolationError("memory IO managers store asset values; this output has no asset key")
    return tuple(context.asset_key.path)


def output_ref(context: dg.OutputContext) -> OutputRef:
    """The ref an output is written to; an output spanning several partitions is refused."""
    asset = _asset_path(context)
    partition = None
    if context.has_asset_partitions:
        keys = context.asset_partition_keys
        if len(keys) != 1:
            raise dg.DagsterInvariantViolationError(
                f"asset {'/'.join(asset)}: a memory tier stores one partition per output, got {len(keys)}"
            )
        partition = keys[0]
    return OutputRef(asset, partition, dict(context.definition_metadata or {}))


def input_refs(context: dg.InputContext) -> list[OutputRef]:
    """The refs an input reads: one per upstream partition (or one for an unpartitioned asset)."""
    asset = _asset_path(context)
    upstream = context.upstream_output
    metadata = dict(upstream.definition_metadata or {}) if upstream is not None else {}
    if not context.has_asset_partitions:
        return [OutputRef(asset, None, metadata)]
    return [OutputRef(asset, key, metadata) for key in context.asset_partition_keys]

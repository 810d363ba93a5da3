"""A tiered IO manager: write-through to a durable tier then a cache, read from the fastest tier that has it.

Writes go to the durable tier first; if that fails the step fails. The cache write that follows may
fail (the cache is down, or anything else goes wrong there): the run log gets a warning and the step
still succeeds, because the durable tier has the value. A cached value that is corrupt is read as a miss
(with a warning), then replaced from the durable tier. Reads try the cache, then the durable tier, and promote what the durable tier
returned into the cache. A cached value is only used when its version matches the version the asset's
latest materialization recorded, so a cache that missed a write (it was down) never serves stale data.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from sophia_dagster.memory.errors import CorruptValueError, MissingValueError, TierUnavailableError
from sophia_dagster.memory.refs import OutputRef, output_ref
from sophia_dagster.memory.store import (
    VERSION_METADATA_KEY,
    Stored,
    TierStore,
    load_partitions,
    new_version,
    read_or_fail,
    write_or_fail,
)


def recorded_version(context: dg.InputContext, ref: OutputRef) -> str | None:
    """The version the asset's (partition's) latest materialization recorded, if any."""
    records_filter = dg.AssetRecordsFilter(
        asset_key=context.asset_key, asset_partitions=[ref.partition] if ref.partition else None
    )
    records = context.instance.fetch_materializations(records_filter, limit=1).records
    materialization = records[0].asset_materialization if records else None
    entry = materialization.metadata.get(VERSION_METADATA_KEY) if materialization else None
    return entry.value if entry is not None else None


class TieredIOManager(dg.ConfigurableIOManager):
    """Write-through cache over a durable tier (e.g. L1 Redis over L4 warehouse)."""

    cache: TierStore
    durable: TierStore

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Durable tier first (failure fails the step), then the cache (failure is a warning)."""
        ref, version = output_ref(context), new_version()
        metadata = write_or_fail(self.durable, ref, obj, version)
        cached = self._cache_write(context, ref, obj, version)
        context.add_output_metadata({**metadata, "memory/cached_in": self.cache.tier if cached else "none"})

    def load_input(self, context: dg.InputContext) -> Any:
        """The cached value when current, else the durable one (then promoted into the cache)."""
        return load_partitions(context, lambda ref: self._load(context, ref))

    def _load(self, context: dg.InputContext, ref: OutputRef) -> Any:
        expected = recorded_version(context, ref)
        cached, cache_up = self._cache_read(context, ref)
        if cached is not None and (expected is None or cached.version == expected):
            context.log.debug(f"{ref} read from {self.cache.tier}")
            return cached.value
        stored = read_or_fail(self.durable, ref)
        if cache_up:
            self._cache_write(context, ref, stored.value, stored.version or expected or new_version())
        return stored.value

    def _cache_read(self, context: dg.InputContext, ref: OutputRef) -> tuple[Stored | None, bool]:
        """(the cached value or None, whether the cache answered)."""
        try:
            return self.cache.read(ref), True
        except CorruptValueError as exc:
            context.log.warning(f"memory cache miss, reading {ref} from {self.durable.tier}: {exc}")
            return None, True
        except MissingValueError:
            return None, True
        except TierUnavailableError as exc:
            context.log.warning(f"memory cache degraded, reading {ref} from {self.durable.tier}: {exc}")
            return None, False

    def _cache_write(
        self, context: dg.OutputContext | dg.InputContext, ref: OutputRef, value: Any, version: str
    ) -> bool:
        try:
            self.cache.write(ref, value, version)
        except Exception as exc:  # the durable tier has the value: no cache failure may fail the step
            context.log.warning(
                f"memory cache degraded, {ref} is stored in {self.durable.tier} only: {type(exc).__name__}: {exc}"
            )
            return False
        return True

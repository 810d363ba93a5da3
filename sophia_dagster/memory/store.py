"""The interface every storage tier implements, and the IO manager that puts any one tier behind assets."""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg

from sophia_dagster.memory.errors import DurableWriteError, MemoryTierError
from sophia_dagster.memory.refs import OutputRef, input_refs, output_ref

VERSION_METADATA_KEY = "memory/version"


@dataclass(frozen=True)
class Stored:
    """A value read from a tier, with the version it was written under (None if the tier keeps none)."""

    value: Any
    version: str | None


class TierStore(dg.ConfigurableResource):
    """A memory tier's storage: writes and reads whole asset values (one per asset partition)."""

    @property
    @abstractmethod
    def tier(self) -> str:
        """The tier's name in messages and metadata, e.g. `L1 redis`."""

    @abstractmethod
    def write(self, ref: OutputRef, value: Any, version: str) -> dict[str, Any]:
        """Store `value` for `ref`, replacing what was there; returns metadata describing the write."""

    @abstractmethod
    def read(self, ref: OutputRef) -> Stored:
        """The value stored for `ref`; `MissingValueError` when there is none."""


def new_version() -> str:
    """A fresh version id for one write."""
    return uuid.uuid4().hex


def write_or_fail(store: TierStore, ref: OutputRef, value: Any, version: str) -> dict[str, Any]:
    """Write to a tier the step depends on: any failure becomes a `DurableWriteError` naming tier and asset."""
    try:
        metadata = store.write(ref, value, version)
    except Exception as exc:
        raise DurableWriteError(f"{store.tier} could not store {ref}: {type(exc).__name__}: {exc}") from exc
    return {"memory/tier": store.tier, VERSION_METADATA_KEY: version, **metadata}


def read_or_fail(store: TierStore, ref: OutputRef) -> Stored:
    """Read from a tier the step depends on: failures become `MemoryTierError`s naming tier and asset."""
    try:
        return store.read(ref)
    except MemoryTierError:
        raise
    except Exception as exc:
        raise MemoryTierError(f"{store.tier} could not read {ref}: {type(exc).__name__}: {exc}") from exc


def load_partitions(context: dg.InputContext, read: Callable[[OutputRef], Any]) -> Any:
    """Read every ref of an input with `read(ref)`: one value, or {partition: value} for several partitions."""
    refs = input_refs(context)
    if len(refs) == 1:
        return read(refs[0])
    return {ref.partition: read(ref) for ref in refs}


class TierIOManager(dg.ConfigurableIOManager):
    """Stores asset values in one memory tier; a failed write fails the step with the tier and asset named."""

    store: TierStore

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Write the asset value to the tier and record what was written."""
        ref = output_ref(context)
        metadata = write_or_fail(self.store, ref, obj, new_version())
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> Any:
        """Read the upstream asset value (a dict by partition when the input spans several)."""
        return load_partitions(context, lambda ref: read_or_fail(self.store, ref).value)

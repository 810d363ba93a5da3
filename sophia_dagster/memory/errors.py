"""The errors memory tiers raise; each message names the tier and the asset (or key) at fault."""

from __future__ import annotations


class MemoryTierError(RuntimeError):
    """A memory tier could not do what was asked."""


class TierUnavailableError(MemoryTierError):
    """The tier's backend cannot be reached (server down, connection refused, timeout)."""


class MissingValueError(MemoryTierError, KeyError):
    """The tier holds no value for the asset (never written, expired or evicted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptValueError(MissingValueError):
    """The tier holds a value that does not decode or verify; a cache treats it as a miss."""


class DurableWriteError(MemoryTierError):
    """The durable tier did not store a value, so the step that produced it must fail."""


class CortexUnavailableError(MemoryTierError):
    """Cortex AI functions cannot run in this environment; raised instead of inventing an answer."""

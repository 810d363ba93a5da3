"""L1: Redis as an ephemeral cache of asset values, with a TTL per asset and chunking of large values.

Keys are `<prefix>:<code location>:<asset key>:<partition>`. A value is written as chunks under
`<key>:<version>:<n>` followed by a manifest under `<key>`, all in one MULTI/EXEC, so a reader sees
either the old value or the new one, never half of one; a reader that finds a chunk gone (expired, or
replaced by a newer write) treats the value as missing rather than returning part of it. The manifest
carries a checksum of the value: a manifest or value that does not decode or verify (corrupted, or changed
in place) is a cache miss, logged as a warning, never an error and never served.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import dagster as dg
import redis
from pydantic import Field, PrivateAttr

from sophia_dagster.memory import codec
from sophia_dagster.memory.errors import (
    CorruptValueError,
    DurableWriteError,
    MissingValueError,
    TierUnavailableError,
)
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.memory.store import Stored, TierIOManager, TierStore

REDIS_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
)
"""Redis being down, full (maxmemory with noeviction) or a read-only replica: the cache tier is unavailable."""
MANIFEST_KEYS = {"kind": str, "version": str, "size": int, "chunks": int, "sha256": str}
log = logging.getLogger(__name__)


def checksum(data: bytes | memoryview) -> str:
    """The checksum a manifest records for its value."""
    return hashlib.sha256(data).hexdigest()


class RedisStore(TierStore):
    """Values in Redis: Arrow IPC for tables, JSON for the rest, chunked above `chunk_bytes`."""

    url: str | None = Field(description="Redis URL (bind one with a password via EnvVar); None: L1 is off")
    code_location: str = Field("sophia_dagster", description="Code location name, part of every key")
    prefix: str = Field("sophia:memory", description="First part of every key")
    chunk_bytes: int = Field(4 * 1024 * 1024, gt=0, description="Largest value stored under a single key")
    default_ttl_seconds: int | None = Field(86_400, description="TTL when the asset sets no memory/ttl_seconds")
    socket_timeout_seconds: float = Field(5.0, gt=0)
    _client: redis.Redis | None = PrivateAttr(None)

    @property
    def tier(self) -> str:
        return "L1 redis"

    def client(self) -> redis.Redis:
        """The Redis client (one connection pool per store)."""
        if self.url is None:
            raise TierUnavailableError(f"{self.tier} is not configured (REDIS_URL is unset)")
        if self._client is None:
            self._client = redis.Redis.from_url(
                self.url,
                socket_timeout=self.socket_timeout_seconds,
                socket_connect_timeout=min(self.socket_timeout_seconds, 2.0),
            )
        return self._client

    def close(self) -> None:
        """Disconnect every pooled connection; the next call opens new ones."""
        client, self._client = self._client, None
        if client is not None:
            client.connection_pool.disconnect()
            client.close()

    def key(self, ref: OutputRef) -> str:
        """The manifest key of a ref."""
        return f"{self.prefix}:{self.code_location}:{ref.name}:{ref.partition if ref.partition else '-'}"

    def write(self, ref: OutputRef, value: Any, version: str) -> dict[str, Any]:
        """Store the value's chunks and then its manifest in one transaction; old chunks are removed after."""
        kind, data = codec.encode(value)
        key, ttl = self.key(ref), ref.ttl_seconds or self.default_ttl_seconds
        view = memoryview(data)
        chunks = [view[i : i + self.chunk_bytes] for i in range(0, len(data), self.chunk_bytes)] or [b""]
        manifest = {
            "kind": kind,
            "version": version,
            "size": len(data),
            "chunks": len(chunks),
            "sha256": checksum(data),
        }
        try:
            previous = self.client().transaction(
                lambda pipe: self._replace(pipe, key, chunks, manifest, ttl), key, value_from_callable=True
            )
            if previous and previous["version"] != version:
                self.client().unlink(*self._chunk_keys(key, previous))
        except REDIS_ERRORS as exc:
            raise TierUnavailableError(f"{self.tier} is unreachable while writing {ref}: {exc}") from exc
        return {"memory/bytes": len(data), "memory/chunks": len(chunks), "memory/ttl_seconds": ttl or 0}

    def _replace(
        self, pipe: redis.client.Pipeline, key: str, chunks: list[memoryview], manifest: dict[str, Any], ttl: int | None
    ) -> dict[str, Any] | None:
        """Inside WATCH on the manifest: read the previous one, then write chunks and manifest in MULTI.

        A concurrent writer that replaces the manifest in between makes redis-py run this again, so every
        replaced manifest's chunks are unlinked by the writer that replaced it, never orphaned until their TTL.
        """
        previous = _parsed(pipe.get(key))
        pipe.multi()
        for index, chunk in enumerate(chunks):
            pipe.set(f"{key}:{manifest['version']}:{index}", chunk, ex=ttl)
        pipe.set(key, json.dumps(manifest), ex=ttl)
        return previous

    def read(self, ref: OutputRef) -> Stored:
        """The value under the current manifest; missing if the manifest or any chunk is gone or does not verify."""
        key = self.key(ref)
        try:
            raw = self.client().get(key)
            manifest = _parsed(raw)
            chunks = self.client().mget(self._chunk_keys(key, manifest)) if manifest else [None]
        except REDIS_ERRORS as exc:
            raise TierUnavailableError(f"{self.tier} is unreachable while reading {ref}: {exc}") from exc
        if raw is not None and manifest is None:
            raise self._corrupt(ref, "its manifest does not decode")
        if manifest is None or any(chunk is None for chunk in chunks):
            raise MissingValueError(f"{self.tier} holds no value for {ref} (never written, expired or evicted)")
        data = b"".join(chunks)
        if len(data) != manifest["size"] or checksum(data) != manifest["sha256"]:
            raise self._corrupt(ref, "its value does not match the manifest's checksum")
        try:
            return Stored(codec.decode(manifest["kind"], data), manifest["version"])
        except Exception as exc:  # a verified value that still does not decode is a miss like any other corruption
            raise self._corrupt(ref, f"its value does not decode ({type(exc).__name__})") from None

    def _corrupt(self, ref: OutputRef, reason: str) -> CorruptValueError:
        message = f"{self.tier} holds a corrupt value for {ref}: {reason}; treating it as missing"
        log.warning(message)
        return CorruptValueError(message)

    def delete(self, ref: OutputRef) -> None:
        """Drop a ref's value (manifest and chunks)."""
        key = self.key(ref)
        try:
            manifest = self._manifest(key)
            self.client().delete(key, *(self._chunk_keys(key, manifest) if manifest else []))
        except REDIS_ERRORS as exc:
            raise TierUnavailableError(f"{self.tier} is unreachable while deleting {ref}: {exc}") from exc

    def _manifest(self, key: str) -> dict[str, Any] | None:
        return _parsed(self.client().get(key))

    @staticmethod
    def _chunk_keys(key: str, manifest: dict[str, Any]) -> list[str]:
        return [f"{key}:{manifest['version']}:{index}" for index in range(manifest["chunks"])]


def _parsed(raw: bytes | None) -> dict[str, Any] | None:
    """A stored manifest, or None when there is none or it is not a manifest (garbage never fails a write)."""
    if raw is None:
        return None
    try:
        manifest = json.loads(raw)
    except ValueError:
        return None
    valid = isinstance(manifest, dict) and all(isinstance(manifest.get(k), t) for k, t in MANIFEST_KEYS.items())
    return manifest if valid else None


class RedisIOManager(TierIOManager):
    """L1 IO manager: asset values cached in Redis with a TTL (asset metadata `memory/ttl_seconds`).

    With `optional` (the `local` environment), a Redis that is unset or cannot be reached skips the tier:
    the step succeeds with a warning and its value is not kept anywhere (nothing downstream can load it).
    """

    store: RedisStore
    optional: bool = Field(False, description="Skip the tier with a warning when Redis is unset or unreachable")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Cache the value; when optional and Redis is unavailable, warn and record that it was not kept."""
        try:
            super().handle_output(context, obj)
        except DurableWriteError as exc:
            if not (self.optional and isinstance(exc.__cause__, TierUnavailableError)):
                raise
            context.log.warning(f"{self.store.tier} skipped, the value is not kept: {exc.__cause__}")
            context.add_output_metadata({"memory/tier": "none", "memory/skipped": str(exc.__cause__)})

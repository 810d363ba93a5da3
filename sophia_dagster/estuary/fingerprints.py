"""Telling whether an endpoint config changed without keeping it: keyed fingerprints in publication details.

Estuary stores endpoint configs encrypted, and each encryption differs, so a config re-encrypted on every
publish would make every task look changed. When a task is published, its publication's ``detail`` records
``name=<fingerprint>:<ciphertext hash>``: a keyed HMAC of the resolved config and a hash of the encrypted
config sent. The next publish finds the latest such record in the publication history; when the live config
is still that ciphertext (an operator's pause or other live edit keeps it) and the fingerprint matches, the
live ciphertext is reused, so the spec is identical and nothing is re-published. The key never leaves the
process, so a fingerprint tells nothing about the values.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

MARK = "config fingerprints:"
ENTRY = re.compile(r"(\S+)=([0-9a-f]{32}):([0-9a-f]{16})")


class Fingerprint(NamedTuple):
    """What a publication recorded about one task's config."""

    plaintext: str
    ciphertext: str


def fingerprint_key(credential: str) -> bytes:
    """The HMAC key, derived from the Estuary credential the publisher already holds."""
    return hashlib.sha256(b"dagster-estuary config fingerprint\0" + credential.encode()).digest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def config_fingerprint(key: bytes, config: Any) -> str:
    """A keyed fingerprint of a resolved (plaintext) endpoint config."""
    return hmac.new(key, _canonical(config), hashlib.sha256).hexdigest()[:32]


def ciphertext_hash(config: Any) -> str:
    """A plain hash of an encrypted config, to recognise it in a live spec."""
    return hashlib.sha256(_canonical(config)).hexdigest()[:16]


def with_fingerprints(detail: str, fingerprints: Mapping[str, Fingerprint]) -> str:
    """``detail`` followed by ``[config fingerprints: name=fp:hash ...]`` (unchanged when there are none)."""
    if not fingerprints:
        return detail
    entries = " ".join(f"{name}={fp.plaintext}:{fp.ciphertext}" for name, fp in sorted(fingerprints.items()))
    return f"{detail} [{MARK} {entries}]"


def latest_fingerprints(history: Iterable[Mapping[str, Any]]) -> dict[str, Fingerprint]:
    """Per catalog name, the fingerprint of its latest publication that recorded one.

    ``history`` rows have ``catalog_name``, ``pub_id`` and ``detail`` (``publication_specs_ext``).
    """
    found: dict[str, tuple[str, Fingerprint]] = {}
    for row in history:
        detail, name, pub_id = str(row.get("detail") or ""), row["catalog_name"], str(row["pub_id"])
        recorded = (
            {n: Fingerprint(p, c) for n, p, c in ENTRY.findall(detail.split(MARK, 1)[1])} if MARK in detail else {}
        )
        if name in recorded and (name not in found or pub_id > found[name][0]):
            found[name] = (pub_id, recorded[name])
    return {name: fingerprint for name, (_, fingerprint) in found.items()}

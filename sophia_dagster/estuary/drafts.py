"""Draft assembly: which specs a publication of some tasks stages, and each spec exactly as it will be sent.

For every spec: ``${ENV}`` placeholders are resolved, remote schemas and derivation modules are read in, the
live ``shards.disable`` is kept unless the catalog sets it, and an endpoint config whose keyed fingerprint
matches the live one keeps its live ciphertext. A spec then identical to its live spec is left out (Estuary
would prune it anyway); the rest carry a masked description of what changes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import httpx

from sophia_dagster.estuary.catalog import SECTIONS, Catalog, iter_placeholders, resolve_placeholders
from sophia_dagster.estuary.catalog.resources import inline_for_publication
from sophia_dagster.estuary.client import LiveSpec
from sophia_dagster.estuary.errors import CatalogError, CatalogIssue, EstuaryError
from sophia_dagster.estuary.fingerprints import Fingerprint, ciphertext_hash, config_fingerprint
from sophia_dagster.estuary.http import Redactor
from sophia_dagster.estuary.publication import ZERO_PUB_ID, DraftSpec
from sophia_dagster.estuary.specdiff import spec_changes
from sophia_dagster.estuary.specpaths import connector_of, task_holder

INFERRED_SCHEMA = "flow://inferred-schema"


def publication_names(catalog: Catalog, tasks: Sequence[str], where: str) -> list[str]:
    """The tasks followed by every catalog collection they bind, each once; unknown tasks name ``where``."""
    unknown = [name for name in tasks if name not in catalog.tasks]
    if unknown:
        raise EstuaryError(f"not tasks of the catalog ({where}): {', '.join(unknown)}")
    bound = [c for task in tasks for c in catalog.collections_of(task) if c in catalog.collections]
    return list(dict.fromkeys([*tasks, *bound]))


def external_bindings(catalog: Catalog, tasks: Sequence[str]) -> list[tuple[str, CatalogIssue]]:
    """Bindings of ``tasks`` to collections outside the catalog, each with the issue to raise if it is not live."""
    return [
        (
            collection,
            CatalogIssue(
                catalog.files[task], path, f"collection {collection!r} is neither in the catalog nor live in Estuary"
            ),
        )
        for task in tasks
        for collection, path in catalog.bindings_of(task)
        if collection not in catalog.collections
    ]


def fetch_text(url: str) -> str:
    """The text at ``url`` (a schema given by URL); ``LookupError`` naming the URL when it cannot be read."""
    try:
        response = httpx.get(url, timeout=30.0, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise LookupError(f"cannot fetch {url}: {exc}") from None
    return response.text


def keep_live_disable(spec: dict[str, Any], live: Mapping[str, Any] | None) -> None:
    """Carry a live ``shards.disable: true`` (an operator's pause) into ``spec``."""
    live_shards = task_holder(dict(live or {})).get("shards") or {}
    if live_shards.get("disable"):
        holder = task_holder(spec)
        holder["shards"] = {**(holder.get("shards") or {}), "disable": True}


def same_spec(spec: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Whether two specs are equal as JSON documents (key order aside)."""
    return live is not None and json.dumps(spec, sort_keys=True) == json.dumps(live, sort_keys=True)


class Prepared(NamedTuple):
    """The drafts to stage, the names left out as unchanged, the masked changes and the config fingerprints."""

    drafts: list[DraftSpec]
    unchanged: list[str]
    changes: dict[str, list[str]]
    fingerprints: dict[str, str]


class DraftBuilder:
    """Builds each spec as it will be sent, against the live specs read just before."""

    def __init__(
        self,
        catalog: Catalog,
        env: Mapping[str, str],
        redactor: Redactor,
        fingerprint_key: bytes,
        fetch: Callable[[str], str] = fetch_text,
    ) -> None:
        self.catalog, self.env, self.redactor, self.key, self.fetch = catalog, env, redactor, fingerprint_key, fetch

    def resolved(self, name: str) -> dict[str, Any]:
        """The spec with placeholders filled (the values used are registered for redaction first)."""
        spec = self.catalog.spec(name)
        self.redactor.add(self.env[var] for var, _ in iter_placeholders(spec) if var in self.env)
        path = (SECTIONS[self.catalog.spec_type(name)], name)
        resolved = resolve_placeholders(spec, self.env, self.catalog.files[name], path)
        if self.catalog.spec_type(name) == "collection":
            inline_for_publication(resolved, self.catalog.files[name], path, self.fetch)
        return resolved

    def reuse_config(self, spec: dict[str, Any], live: LiveSpec | None, recorded: Fingerprint | None) -> str | None:
        """Fingerprint the plaintext config; when the live ciphertext was made from the same, put it in ``spec``."""
        connector = connector_of(spec)
        if connector is None or "sops" in connector["config"]:
            return None
        fingerprint = config_fingerprint(self.key, connector["config"])
        live_connector = connector_of(copy.deepcopy(live.spec)) if live else None
        if (
            live_connector is not None
            and recorded is not None
            and recorded == (fingerprint, ciphertext_hash(live_connector["config"]))
        ):
            connector["config"] = live_connector["config"]
        return fingerprint

    def prepare(
        self, names: Sequence[str], live: Mapping[str, LiveSpec], recorded: Mapping[str, Fingerprint]
    ) -> Prepared:
        """The drafts for ``names``: specs equal to their live spec are left out as unchanged."""
        prepared = Prepared([], [], {}, {})
        for name in names:
            spec, current = self.resolved(name), live.get(name)
            if name in self.catalog.tasks and not self.catalog.sets_disable(name):
                keep_live_disable(spec, current.spec if current else None)
            fingerprint = self.reuse_config(spec, current, recorded.get(name))
            if fingerprint is not None:
                prepared.fingerprints[name] = fingerprint
            if current is not None and same_spec(spec, current.spec) and INFERRED_SCHEMA not in json.dumps(spec):
                prepared.unchanged.append(name)
                continue
            prepared.changes[name] = spec_changes(current.spec if current else None, spec, self.redactor)
            expect = current.last_pub_id if current else ZERO_PUB_ID
            prepared.drafts.append(DraftSpec(name, self.catalog.spec_type(name), spec, expect))
        return prepared


def raise_if_missing(external: Sequence[tuple[str, CatalogIssue]], live: Mapping[str, LiveSpec]) -> None:
    """Raise the issues of external bindings whose collection is not live either."""
    missing = [issue for collection, issue in external if collection not in live]
    if missing:
        raise CatalogError(missing)

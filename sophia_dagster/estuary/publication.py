"""The publish state machine: draft -> staged specs -> pruned -> publication -> poll ``job_status`` -> outcome.

As ``flowctl catalog publish`` does, specs identical to their live specs are pruned from the draft by Estuary
(``rpc/prune_unchanged_draft_specs``) before publishing; when nothing is left, nothing is published. A draft
is always deleted unless it became the publication; a retry after a lost answer finds the draft or
publication already created instead of creating it twice.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import httpx

from sophia_dagster.estuary.errors import ConcurrentChangeError, EstuaryError, PublicationFailedError
from sophia_dagster.estuary.fingerprints import Fingerprint, ciphertext_hash, with_fingerprints
from sophia_dagster.estuary.http import Redactor
from sophia_dagster.estuary.models import DraftError, PublishResult
from sophia_dagster.estuary.postgrest import OBJECT, PostgRest, first_row
from sophia_dagster.estuary.specpaths import connector_of

DRAFT_SPECS_BATCH = 100
ZERO_PUB_ID = "00:00:00:00:00:00:00:00"
SUCCESS = frozenset({"success", "emptyDraft"})
EXPECT_PUB_ID_ERROR = re.compile(r"expected publication id", re.IGNORECASE)
SCOPE_NAME = re.compile(r"^flow://[a-z]+/([^#?]+)")


class DraftSpec(NamedTuple):
    """One spec to stage in a draft; ``expect_pub_id`` guards against overwriting someone else's change."""

    catalog_name: str
    spec_type: str
    spec: dict[str, Any] | None
    expect_pub_id: str | None


def recorded_fingerprints(staged: Sequence[DraftSpec], fingerprints: Mapping[str, str]) -> dict[str, Fingerprint]:
    """What to record per staged task: its plaintext fingerprint and the hash of the ciphertext staged."""
    recorded = {}
    for draft in staged:
        connector = connector_of(draft.spec)
        if draft.catalog_name in fingerprints and connector is not None:
            recorded[draft.catalog_name] = Fingerprint(
                fingerprints[draft.catalog_name], ciphertext_hash(connector["config"])
            )
    return recorded


def moved_names(errors: Sequence[DraftError], names: Sequence[str]) -> list[str]:
    """The staged names whose live pub_id moved, read from the errors' scopes (all names when none say)."""
    moved = []
    for error in errors:
        if EXPECT_PUB_ID_ERROR.search(error.detail):
            match = SCOPE_NAME.match(error.scope)
            moved.append(match.group(1) if match else error.scope)
    return [name for name in names if name in moved] or list(names)


def mismatch_errors(job: Mapping[str, Any]) -> list[DraftError]:
    """Draft errors describing an ``expectPubIdMismatch`` job status's ``failures``."""
    return [
        DraftError(
            scope=str(f.get("catalog_name", "")),
            detail=f"expected publication ID {f.get('expected')} was not matched (it's actually {f.get('actual')})",
        )
        for f in job.get("failures") or []
        if isinstance(f, dict)
    ]


class Publisher:
    """Publishes drafts through PostgREST, placing new tasks in ``data_plane_name``."""

    def __init__(
        self,
        pg: PostgRest,
        redactor: Redactor,
        *,
        data_plane_name: str,
        prepare: Callable[[DraftSpec], DraftSpec],
        poll_interval_seconds: float,
        publish_timeout_seconds: float,
    ) -> None:
        self.pg, self.redactor, self.data_plane_name, self.prepare = pg, redactor, data_plane_name, prepare
        self.poll_interval, self.publish_timeout = poll_interval_seconds, publish_timeout_seconds

    def publish(
        self,
        drafts: Sequence[DraftSpec],
        *,
        dry_run: bool,
        detail: str,
        live_pub_id: str = ZERO_PUB_ID,
        fingerprints: Mapping[str, str] | None = None,
    ) -> PublishResult:
        """Stage ``drafts``, prune the unchanged ones and publish the rest.

        When Estuary prunes every spec, the draft is deleted and the result is ``unchanged`` with
        ``live_pub_id``. ``fingerprints`` (plaintext config fingerprints by name) are recorded in the
        publication's detail with a hash of the ciphertext sent. Raises ``PublicationFailedError`` with
        Estuary's errors (``ConcurrentChangeError`` naming only the specs whose live pub_id moved).
        """
        staged = [self.prepare(d) for d in drafts]
        detail = with_fingerprints(detail, recorded_fingerprints(staged, fingerprints or {}))
        draft_id = self._create_draft(f"{detail} [{uuid.uuid4().hex[:12]}]")
        try:
            self._stage(draft_id, staged)
            pruned = self._prune(draft_id)
            names = [d.catalog_name for d in drafts if d.catalog_name not in pruned]
            if not names:
                self._delete_draft(draft_id)
                return PublishResult(pub_id=live_pub_id, status="unchanged", dry_run=dry_run, unchanged=pruned)
            pub_id = self._create_publication(draft_id, dry_run, detail)
            job = self._wait_for_publication(pub_id)
        except BaseException:
            self._discard_draft(draft_id)
            raise
        outcome = job["type"]
        if outcome in SUCCESS:
            if dry_run or outcome != "success":
                self._delete_draft(draft_id)
            return PublishResult(pub_id=pub_id, status=outcome, dry_run=dry_run, names=names, unchanged=pruned)
        try:
            errors = self.draft_errors(draft_id) + mismatch_errors(job)
        finally:
            self._discard_draft(draft_id)
        if outcome == "expectPubIdMismatch" or any(EXPECT_PUB_ID_ERROR.search(e.detail) for e in errors):
            raise ConcurrentChangeError(pub_id, outcome, moved_names(errors, names), errors)
        raise PublicationFailedError(pub_id, outcome, names, errors)

    def _prune(self, draft_id: str) -> list[str]:
        """Have Estuary drop the draft's specs identical to their live specs; the names it dropped."""
        answer = self.pg.request("POST", "rpc/prune_unchanged_draft_specs", json={"prune_draft_id": draft_id})
        return [str(row["catalog_name"]) for row in answer.json() or []]

    def _stage(self, draft_id: str, drafts: Sequence[DraftSpec]) -> None:
        headers = {"Prefer": "resolution=merge-duplicates,return=representation"}
        params = {"on_conflict": "draft_id,catalog_name", "select": "catalog_name,spec_type"}
        for start in range(0, len(drafts), DRAFT_SPECS_BATCH):
            rows = [{"draft_id": draft_id, **d._asdict()} for d in drafts[start : start + DRAFT_SPECS_BATCH]]
            self.pg.request("POST", "draft_specs", params=params, json=rows, headers=headers)

    def _create_draft(self, detail: str) -> str:
        """Create a draft; a retry after a lost answer finds the one already created by its unique detail."""
        select = {"select": "id,created_at"}

        def already_created() -> httpx.Response | None:
            found = self.pg.request("GET", "drafts", params={**select, "detail": f"eq.{detail}"})
            return found if found.json() else None

        answer = self.pg.request(
            "POST", "drafts", params=select, json={"detail": detail}, headers=OBJECT, recover=already_created
        )
        return first_row(answer.json())["id"]

    def _create_publication(self, draft_id: str, dry_run: bool, detail: str) -> str:
        """Create the publication; a retry after a lost answer first looks for the one already created."""
        body = {"draft_id": draft_id, "dry_run": dry_run, "detail": detail, "data_plane_name": self.data_plane_name}

        def already_created() -> httpx.Response | None:
            found = self.pg.request(
                "GET", "publications", params={"draft_id": f"eq.{draft_id}", "select": "id,logs_token"}
            )
            return found if found.json() else None

        answer = self.pg.request(
            "POST",
            "publications",
            params={"select": "id,logs_token"},
            json=body,
            headers=OBJECT,
            recover=already_created,
        )
        return first_row(answer.json())["id"]

    def _wait_for_publication(self, pub_id: str) -> dict[str, Any]:
        """Poll ``job_status`` until it leaves ``queued``; return the final job status."""
        deadline = time.monotonic() + self.publish_timeout
        params = {"id": f"eq.{pub_id}", "select": "job_status"}
        while True:
            rows = self.pg.request("GET", "publications", params=params).json()
            job = (rows[0].get("job_status") or {}) if rows else {}
            if job.get("type", "queued") != "queued":
                return job
            if time.monotonic() > deadline:
                raise EstuaryError(f"Estuary publication {pub_id} still queued after {self.publish_timeout:.0f}s")
            time.sleep(self.poll_interval)

    def draft_errors(self, draft_id: str) -> list[DraftError]:
        """Build and validation errors Estuary recorded against a draft."""
        params = {"draft_id": f"eq.{draft_id}", "select": "scope,detail"}
        rows = self.pg.request("GET", "draft_errors", params=params).json()
        return [DraftError(scope=row.get("scope") or "", detail=self.redactor(row.get("detail") or "")) for row in rows]

    def _delete_draft(self, draft_id: str) -> None:
        self.pg.request("DELETE", "drafts", params={"id": f"eq.{draft_id}"})

    def _discard_draft(self, draft_id: str) -> None:
        """Delete a draft on a failure path: if that fails too, the failure being reported stands."""
        with contextlib.suppress(EstuaryError):
            self._delete_draft(draft_id)

"""The publish state machine: draft -> staged specs -> publication -> poll ``job_status`` -> outcome.

A draft is always deleted unless it became the publication; a retry after a lost answer finds the draft or
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
from sophia_dagster.estuary.http import Redactor
from sophia_dagster.estuary.models import DraftError, PublishResult
from sophia_dagster.estuary.postgrest import OBJECT, PostgRest, first_row

DRAFT_SPECS_BATCH = 100
ZERO_PUB_ID = "00:00:00:00:00:00:00:00"
SUCCESS = frozenset({"success", "emptyDraft"})
EXPECT_PUB_ID_ERROR = re.compile(r"expected publication id", re.IGNORECASE)


class DraftSpec(NamedTuple):
    """One spec to stage in a draft; ``expect_pub_id`` guards against overwriting someone else's change."""

    catalog_name: str
    spec_type: str
    spec: dict[str, Any] | None
    expect_pub_id: str | None


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

    def publish(self, drafts: Sequence[DraftSpec], *, dry_run: bool, detail: str) -> PublishResult:
        """Stage ``drafts`` in a new draft and publish it; raise ``PublicationFailedError`` with Estuary's errors."""
        names = [d.catalog_name for d in drafts]
        staged = [self.prepare(d) for d in drafts]
        draft_id = self._create_draft(f"{detail} [{uuid.uuid4().hex[:12]}]")
        try:
            self._stage(draft_id, staged)
            pub_id = self._create_publication(draft_id, dry_run, detail)
            job = self._wait_for_publication(pub_id)
        except BaseException:
            with contextlib.suppress(EstuaryError):
                self._delete_draft(draft_id)
            raise
        outcome = job["type"]
        if outcome in SUCCESS:
            if dry_run or outcome != "success":
                self._delete_draft(draft_id)
            return PublishResult(pub_id=pub_id, status=outcome, dry_run=dry_run, names=names)
        try:
            errors = self.draft_errors(draft_id) + mismatch_errors(job)
        finally:
            self._delete_draft(draft_id)
        concurrent = outcome == "expectPubIdMismatch" or any(EXPECT_PUB_ID_ERROR.search(e.detail) for e in errors)
        raise (ConcurrentChangeError if concurrent else PublicationFailedError)(pub_id, outcome, names, errors)

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

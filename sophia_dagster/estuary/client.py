"""Estuary control-plane client: live specs, drafts and publications, pause/resume, status and stats.

Talks to the three surfaces described in Estuary's ``flowctl``: PostgREST (``pg_url``), the agent API
(``agent_url``) and the config-encryption service (``encryption_url``). Lists of names are sent in
batches so a call for 1,000 tasks costs ``ceil(1000 / batch)`` requests.
"""

from __future__ import annotations

import contextlib
import copy
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import httpx
from pydantic import BaseModel

from sophia_dagster.estuary.auth import TokenSource
from sophia_dagster.estuary.errors import ConcurrentChangeError, EstuaryError, PublicationFailed
from sophia_dagster.estuary.http import EstuaryHttp, Redactor, RetryPolicy
from sophia_dagster.estuary.models import BindingStats, DraftError, PublishResult, TaskStats, TaskStatus

LIVE_SPECS_BATCH = 25
DRAFT_SPECS_BATCH = 100
STATUS_BATCH = 100
STATS_BATCH = 100
PAGE_SIZE = 1000
ZERO_PUB_ID = "00:00:00:00:00:00:00:00"
SUCCESS = frozenset({"success", "emptyDraft"})
EXPECT_PUB_ID_ERROR = re.compile(r"expected publication id", re.IGNORECASE)
STATS_COLUMNS = (
    "catalog_name,grain,ts,docs_written_by_me,bytes_written_by_me,docs_read_by_me,bytes_read_by_me,"
    "docs_written_to_me,bytes_written_to_me,docs_read_from_me,bytes_read_from_me,warnings,errors,failures,"
    "usage_seconds,flow_document"
)
OBJECT = {"Accept": "application/vnd.pgrst.object+json", "Prefer": "return=representation"}


class DraftSpec(NamedTuple):
    """One spec to stage in a draft; ``expect_pub_id`` guards against overwriting someone else's change."""

    catalog_name: str
    spec_type: str
    spec: dict[str, Any] | None
    expect_pub_id: str | None


class LiveSpec(BaseModel):
    """A row of ``live_specs_ext``."""

    catalog_name: str
    spec_type: str | None = None
    last_pub_id: str
    spec: dict[str, Any] | None = None


def batched(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def in_filter(names: Sequence[str]) -> str:
    """A PostgREST ``in.(…)`` filter with quoted names."""
    return "in.(" + ",".join(f'"{name}"' for name in names) + ")"


GRAINS = ("hourly", "daily", "monthly")


def floor_to_grain(moment: datetime, grain: str) -> datetime:
    """Start of the stats bucket holding ``moment`` (stats rows are keyed by bucket start)."""
    if grain not in GRAINS:
        raise ValueError(f"stats grain {grain!r} is not one of {', '.join(GRAINS)}")
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if grain == "hourly":
        return moment
    moment = moment.replace(hour=0)
    return moment if grain == "daily" else moment.replace(day=1)


def binding_stats(document: Mapping[str, Any] | None) -> dict[str, BindingStats]:
    """Per-collection docs/bytes from a stats ``flow_document`` (``taskStats.capture|materialize[c].out``)."""
    task_stats = (document or {}).get("taskStats") or {}
    result: dict[str, BindingStats] = {}
    for kind in ("capture", "materialize"):
        for collection, combiner in (task_stats.get(kind) or {}).items():
            out = (combiner or {}).get("out") or {}
            result[collection] = BindingStats(docs=out.get("docsTotal", 0), bytes=out.get("bytesTotal", 0))
    return result


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


class EstuaryClient:
    """A synchronous client for Estuary's control plane; one instance per process is enough."""

    def __init__(
        self,
        api_token: str,
        *,
        pg_url: str,
        agent_url: str,
        encryption_url: str,
        anon_key: str,
        data_plane_name: str,
        timeout_seconds: float = 30.0,
        retry: RetryPolicy | None = None,
        poll_interval_seconds: float = 1.0,
        publish_timeout_seconds: float = 900.0,
    ) -> None:
        self.pg_url, self.agent_url = pg_url.rstrip("/"), agent_url.rstrip("/")
        self.encryption_url, self.anon_key = encryption_url.rstrip("/"), anon_key
        self.data_plane_name = data_plane_name
        self.poll_interval, self.publish_timeout = poll_interval_seconds, publish_timeout_seconds
        self.redactor = Redactor()
        self.http = EstuaryHttp(timeout_seconds, retry or RetryPolicy(), self.redactor)
        self.tokens = TokenSource(api_token, self._exchange, self.redactor)
        self._schemas: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        """Release connections."""
        self.http.close()

    def __enter__(self) -> EstuaryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exchange(self, body: dict[str, str]) -> dict[str, Any]:
        """Trade a refresh token for an access JWT (only the public ``apikey`` header is sent)."""
        url = f"{self.pg_url}/rpc/generate_access_token"
        return self.http.request("POST", url, json=body, headers={"apikey": self.anon_key}).json()

    def _bearer(self, extra: Mapping[str, str] | None = None) -> Callable[[], dict[str, str]]:
        """Headers with a valid access token, built per attempt: a retry may come after the token expired."""
        return lambda: {"Authorization": f"Bearer {self.tokens.access_token()}", **(extra or {})}

    def _pg(self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        auth = self._bearer({"apikey": self.anon_key, **(headers or {})})
        return self.http.request(method, f"{self.pg_url}/{path}", headers=auth, **kwargs)

    def _agent_get(self, path: str, params: Any) -> httpx.Response:
        return self.http.request("GET", f"{self.agent_url}/{path}", params=params, headers=self._bearer())

    def _pg_rows(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """All rows of a PostgREST read, paged with ``Range`` until a short page."""
        rows: list[dict[str, Any]] = []
        while True:
            window = {"Range-Unit": "items", "Range": f"{len(rows)}-{len(rows) + PAGE_SIZE - 1}"}
            page = self._pg("GET", path, params=params, headers=window).json()
            rows.extend(page)
            if len(page) < PAGE_SIZE:
                return rows

    def live_specs(self, names: Sequence[str]) -> list[LiveSpec]:
        """The live (published, not deleted) specs among ``names``; absent names are simply missing."""
        specs: list[LiveSpec] = []
        for batch in batched(list(names), LIVE_SPECS_BATCH):
            params = {
                "select": "catalog_name,spec_type,last_pub_id,spec",
                "catalog_name": in_filter(batch),
                "spec_type": "not.is.null",
            }
            specs.extend(LiveSpec.model_validate(row) for row in self._pg_rows("live_specs_ext", params))
        return specs

    def status(self, names: Sequence[str]) -> list[TaskStatus]:
        """Controller status of each name, in the order asked (agent API, 100 names per request)."""
        found: dict[str, TaskStatus] = {}
        for batch in batched(list(names), STATUS_BATCH):
            params = [("name", name) for name in batch] + [("short", "true")]
            answer = self._agent_get("api/v1/catalog/status", params)
            found.update((row["catalog_name"], TaskStatus.from_api(row)) for row in answer.json())
        missing = [name for name in names if name not in found]
        if missing:
            raise EstuaryError(f"Estuary returned no status for {', '.join(missing)}")
        return [found[name] for name in names]

    def stats(self, names: Sequence[str], since: datetime, grain: str = "hourly") -> list[TaskStats]:
        """Stats rows of ``names`` from the bucket holding ``since`` on (100 names per request)."""
        rows: list[TaskStats] = []
        start = floor_to_grain(since, grain).isoformat()
        for batch in batched(list(names), STATS_BATCH):
            params = {
                "select": STATS_COLUMNS,
                "catalog_name": in_filter(batch),
                "ts": f"gte.{start}",
                "order": "catalog_name,ts",
            }
            for row in self._pg_rows(f"catalog_stats_{grain}", params):
                rows.append(TaskStats.model_validate({**row, "bindings": binding_stats(row.get("flow_document"))}))
        return rows

    def encrypt_config(self, image: str, config: dict[str, Any]) -> dict[str, Any]:
        """Encrypt an endpoint config with the connector tag's schema; configs with a ``sops`` envelope pass through."""
        if "sops" in config:
            return config
        body = {"config": config, "schema": self._endpoint_schema(image)}
        return self.http.request("POST", f"{self.encryption_url}/v1/encrypt-config", json=body).json()

    def _endpoint_schema(self, image: str) -> dict[str, Any]:
        if image not in self._schemas:
            name, tag = image.rsplit(":", 1)
            connectors = self._pg("GET", "connectors", params={"image_name": f"eq.{name}", "select": "id"}).json()
            if not connectors:
                raise EstuaryError(f"connector image {name} is not known to Estuary")
            params = {
                "connector_id": f"eq.{connectors[0]['id']}",
                "image_tag": f"eq.:{tag}",
                "select": "endpoint_spec_schema",
            }
            tags = self._pg("GET", "connector_tags", params=params).json()
            if not tags:
                raise EstuaryError(f"connector image {image} has no tag :{tag} in Estuary")
            self._schemas[image] = tags[0]["endpoint_spec_schema"]
        return self._schemas[image]

    def _encrypted(self, draft: DraftSpec) -> DraftSpec:
        connector = ((draft.spec or {}).get("endpoint") or {}).get("connector")
        if not connector or not isinstance(connector.get("config"), dict):
            return draft
        spec = copy.deepcopy(draft.spec)
        spec["endpoint"]["connector"]["config"] = self.encrypt_config(connector["image"], connector["config"])
        return draft._replace(spec=spec)

    def publish(
        self, drafts: Sequence[DraftSpec], *, dry_run: bool = False, detail: str = "sophia_dagster"
    ) -> PublishResult:
        """Stage ``drafts`` in a new draft and publish it; raise ``PublicationFailed`` with Estuary's errors."""
        names = [d.catalog_name for d in drafts]
        staged = [self._encrypted(d) for d in drafts]
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
        raise (ConcurrentChangeError if concurrent else PublicationFailed)(pub_id, outcome, names, errors)

    def _stage(self, draft_id: str, drafts: Sequence[DraftSpec]) -> None:
        headers = {"Prefer": "resolution=merge-duplicates,return=representation"}
        params = {"on_conflict": "draft_id,catalog_name", "select": "catalog_name,spec_type"}
        for start in range(0, len(drafts), DRAFT_SPECS_BATCH):
            rows = [{"draft_id": draft_id, **d._asdict()} for d in drafts[start : start + DRAFT_SPECS_BATCH]]
            self._pg("POST", "draft_specs", params=params, json=rows, headers=headers)

    def _create_draft(self, detail: str) -> str:
        """Create a draft; a retry after a lost answer finds the one already created by its unique detail."""
        select = {"select": "id,created_at"}

        def already_created() -> httpx.Response | None:
            found = self._pg("GET", "drafts", params={**select, "detail": f"eq.{detail}"})
            return found if found.json() else None

        answer = self._pg(
            "POST", "drafts", params=select, json={"detail": detail}, headers=OBJECT, recover=already_created
        ).json()
        return (answer[0] if isinstance(answer, list) else answer)["id"]

    def _create_publication(self, draft_id: str, dry_run: bool, detail: str) -> str:
        """Create the publication; a retry after a lost answer first looks for the one already created."""
        body = {"draft_id": draft_id, "dry_run": dry_run, "detail": detail, "data_plane_name": self.data_plane_name}

        def already_created() -> httpx.Response | None:
            found = self._pg("GET", "publications", params={"draft_id": f"eq.{draft_id}", "select": "id,logs_token"})
            return found if found.json() else None

        answer = self._pg(
            "POST",
            "publications",
            params={"select": "id,logs_token"},
            json=body,
            headers=OBJECT,
            recover=already_created,
        ).json()
        return (answer[0] if isinstance(answer, list) else answer)["id"]

    def _wait_for_publication(self, pub_id: str) -> dict[str, Any]:
        """Poll ``job_status`` until it leaves ``queued``; return the final job status."""
        deadline = time.monotonic() + self.publish_timeout
        params = {"id": f"eq.{pub_id}", "select": "job_status"}
        while True:
            rows = self._pg("GET", "publications", params=params).json()
            job = (rows[0].get("job_status") or {}) if rows else {}
            if job.get("type", "queued") != "queued":
                return job
            if time.monotonic() > deadline:
                raise EstuaryError(f"Estuary publication {pub_id} still queued after {self.publish_timeout:.0f}s")
            time.sleep(self.poll_interval)

    def draft_errors(self, draft_id: str) -> list[DraftError]:
        """Build and validation errors Estuary recorded against a draft."""
        rows = self._pg("GET", "draft_errors", params={"draft_id": f"eq.{draft_id}", "select": "scope,detail"}).json()
        return [DraftError(scope=row.get("scope") or "", detail=self.redactor(row.get("detail") or "")) for row in rows]

    def _delete_draft(self, draft_id: str) -> None:
        self._pg("DELETE", "drafts", params={"id": f"eq.{draft_id}"})

    def set_disabled(self, name: str, disabled: bool) -> PublishResult:
        """Pause (``disabled``) or resume a live task by republishing it with ``shards.disable``."""
        live = next(iter(self.live_specs([name])), None)
        if live is None or live.spec is None:
            raise EstuaryError(f"{name} is not a live Estuary spec")
        spec = copy.deepcopy(live.spec)
        holder = spec.get("derive", spec) if live.spec_type == "collection" else spec
        if live.spec_type == "collection" and "derive" not in spec:
            raise EstuaryError(f"{name} is a plain collection; only tasks can be paused")
        holder.setdefault("shards", {})["disable"] = disabled
        action = "pause" if disabled else "resume"
        return self.publish([DraftSpec(name, live.spec_type or "", spec, live.last_pub_id)], detail=f"{action} {name}")

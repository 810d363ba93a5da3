"""Estuary control-plane client: live specs, publications, pause/resume, status and stats.

Talks to the three surfaces described in Estuary's ``flowctl``: PostgREST (``pg_url``), the agent API
(``agent_url``) and the config-encryption service (``encryption_url``). Lists of names are sent in
batches so a call for 1,000 tasks costs ``ceil(1000 / batch)`` requests.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from sophia_dagster.estuary.auth import TokenSource
from sophia_dagster.estuary.encryption import ConfigEncryptor
from sophia_dagster.estuary.errors import EstuaryError
from sophia_dagster.estuary.http import EstuaryHttp, Redactor, RetryPolicy
from sophia_dagster.estuary.models import PublishResult, TaskStats, TaskStatus
from sophia_dagster.estuary.postgrest import PostgRest, batched, bearer, in_filter
from sophia_dagster.estuary.publication import DraftSpec, Publisher
from sophia_dagster.estuary.stats import STATS_COLUMNS, binding_stats, floor_to_grain

LIVE_SPECS_BATCH = 25
STATUS_BATCH = 100
STATS_BATCH = 100


class LiveSpec(BaseModel):
    """A row of ``live_specs_ext``."""

    catalog_name: str
    spec_type: str | None = None
    last_pub_id: str
    spec: dict[str, Any] | None = None


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
        self.agent_url = agent_url.rstrip("/")
        self.redactor = Redactor()
        self.http = EstuaryHttp(timeout_seconds, retry or RetryPolicy(), self.redactor)
        self.tokens = TokenSource(api_token, self._exchange, self.redactor)
        self.pg = PostgRest(self.http, self.tokens, pg_url, anon_key)
        self.encryptor = ConfigEncryptor(self.http, self.pg, encryption_url)
        self.publisher = Publisher(
            self.pg,
            self.redactor,
            data_plane_name=data_plane_name,
            prepare=self.encryptor.encrypted,
            poll_interval_seconds=poll_interval_seconds,
            publish_timeout_seconds=publish_timeout_seconds,
        )

    def close(self) -> None:
        """Release connections."""
        self.http.close()

    def __enter__(self) -> EstuaryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exchange(self, body: dict[str, str]) -> dict[str, Any]:
        """Trade a refresh token for an access JWT (only the public ``apikey`` header is sent)."""
        url = f"{self.pg.url}/rpc/generate_access_token"
        return self.http.request("POST", url, json=body, headers={"apikey": self.pg.anon_key}).json()

    def live_specs(self, names: Sequence[str]) -> list[LiveSpec]:
        """The live (published, not deleted) specs among ``names``; absent names are simply missing."""
        specs: list[LiveSpec] = []
        for batch in batched(list(names), LIVE_SPECS_BATCH):
            params = {
                "select": "catalog_name,spec_type,last_pub_id,spec",
                "catalog_name": in_filter(batch),
                "spec_type": "not.is.null",
            }
            specs.extend(LiveSpec.model_validate(row) for row in self.pg.rows("live_specs_ext", params))
        return specs

    def status(self, names: Sequence[str]) -> list[TaskStatus]:
        """Controller status of each name, in the order asked (agent API, 100 names per request)."""
        found: dict[str, TaskStatus] = {}
        for batch in batched(list(names), STATUS_BATCH):
            params = [("name", name) for name in batch] + [("short", "true")]
            url = f"{self.agent_url}/api/v1/catalog/status"
            answer = self.http.request("GET", url, params=params, headers=bearer(self.tokens))
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
            for row in self.pg.rows(f"catalog_stats_{grain}", params):
                rows.append(TaskStats.model_validate({**row, "bindings": binding_stats(row.get("flow_document"))}))
        return rows

    def publish(self, drafts: Sequence[DraftSpec], *, dry_run: bool = False, detail: str) -> PublishResult:
        """Stage ``drafts`` in a new draft and publish it (see :class:`~sophia_dagster.estuary.publication.Publisher`)."""
        return self.publisher.publish(drafts, dry_run=dry_run, detail=detail)

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

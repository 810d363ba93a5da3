"""``EstuaryWorkspace``: the runtime of Estuary's hosted control plane (publish, pause/resume, status, stats)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime

import dagster as dg
from pydantic import Field, PrivateAttr

from sophia_dagster.estuary.client import EstuaryClient
from sophia_dagster.estuary.drafts import draft_specs, publication_names
from sophia_dagster.estuary.http import RetryPolicy
from sophia_dagster.estuary.models import PublishResult, TaskStats, TaskStatus
from sophia_dagster.estuary.polling import wait_until_healthy
from sophia_dagster.estuary.runtime import EstuaryRuntime

DEFAULT_PG_URL = "https://eyrcnmuzzyriypdajwdk.supabase.co/rest/v1"
DEFAULT_AGENT_URL = "https://api.estuary.dev"
DEFAULT_ENCRYPTION_URL = "https://config-encryption.estuary.dev/"
DEFAULT_DATA_PLANE = "ops/dp/public/gcp-us-central1-c1"
# Estuary's public PostgREST key, published as DEFAULT_PG_PUBLIC_TOKEN in flowctl: configuration, not a secret.
DEFAULT_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZSIsInJlZiI6ImV5cmNubXV6enlyaXlwZGFqd2RrIiwicm9sZSI6"
    "ImFub24iLCJpYXQiOjE2NDg3NTA1NzksImV4cCI6MTk2NDMyNjU3OX0.y1OyXD3-DYMz10eGxzo1eeamVMMUwIIeOoMryTRAoco"
)


class EstuaryWorkspace(EstuaryRuntime):
    """Estuary's hosted control plane (dev/prod): publishes the catalog and reads status and stats over HTTP.

    Bind ``api_token`` with ``dg.EnvVar("ESTUARY_API_TOKEN")`` so the token is never stored in run config.
    ``${ENV_VAR}`` placeholders in the catalog are resolved from the process environment when publishing.
    """

    api_token: str = Field(repr=False, description="Estuary refresh token (base64 of {id, secret}) or an access JWT.")
    pg_url: str = Field(default=DEFAULT_PG_URL, description="Estuary's PostgREST base URL.")
    agent_url: str = Field(default=DEFAULT_AGENT_URL, description="Estuary's agent API base URL.")
    encryption_url: str = Field(default=DEFAULT_ENCRYPTION_URL, description="Estuary's config-encryption service.")
    anon_key: str = Field(default=DEFAULT_ANON_KEY, description="Estuary's public PostgREST key (not a secret).")
    data_plane_name: str = Field(default=DEFAULT_DATA_PLANE, description="Data plane new tasks are placed in.")
    publication_detail: str = Field(
        default="dagster-estuary", description="Prefix of the detail Estuary shows on drafts and publications."
    )
    request_timeout_seconds: float = Field(default=30.0, description="Timeout of one HTTP request.")
    max_attempts: int = Field(default=8, description="Attempts per request before a transient failure is raised.")
    initial_backoff_seconds: float = Field(default=0.5, description="First retry delay (doubles, with jitter).")
    max_backoff_seconds: float = Field(default=30.0, description="Cap of one retry delay.")
    max_retry_seconds: float = Field(default=300.0, description="Cap of the total time spent retrying one request.")
    poll_interval_seconds: float = Field(default=1.0, description="Delay between publication/status polls.")
    publish_timeout_seconds: float = Field(default=900.0, description="How long a publication may stay queued.")

    _client: EstuaryClient | None = PrivateAttr(default=None)

    @property
    def client(self) -> EstuaryClient:
        """The HTTP client (created on first use, so loading definitions makes no network call)."""
        if self._client is None:
            self._client = EstuaryClient(
                self.api_token,
                pg_url=self.pg_url,
                agent_url=self.agent_url,
                encryption_url=self.encryption_url,
                anon_key=self.anon_key,
                data_plane_name=self.data_plane_name,
                timeout_seconds=self.request_timeout_seconds,
                retry=RetryPolicy(
                    max_attempts=self.max_attempts,
                    initial_backoff_seconds=self.initial_backoff_seconds,
                    max_backoff_seconds=self.max_backoff_seconds,
                    max_total_seconds=self.max_retry_seconds,
                ),
                poll_interval_seconds=self.poll_interval_seconds,
                publish_timeout_seconds=self.publish_timeout_seconds,
            )
        return self._client

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def publish(self, names: Sequence[str] | None = None, *, dry_run: bool = False) -> PublishResult:
        catalog = self.load_catalog()
        tasks = list(names) if names is not None else list(catalog.tasks)
        specs = publication_names(catalog, tasks, self.catalog_path)
        live = {spec.catalog_name: spec.last_pub_id for spec in self.client.live_specs(specs)}
        drafts = draft_specs(catalog, specs, live, os.environ, self.client.redactor.add)
        return self.client.publish(drafts, dry_run=dry_run, detail=f"{self.publication_detail}: {', '.join(tasks)}")

    def pause(self, name: str) -> PublishResult:
        return self.client.set_disabled(name, True)

    def resume(self, name: str) -> PublishResult:
        return self.client.set_disabled(name, False)

    def status(self, names: Sequence[str]) -> list[TaskStatus]:
        return self.client.status(names)

    def stats(self, names: Sequence[str], since: datetime) -> list[TaskStats]:
        return self.client.stats(names, since)

    def wait_until_caught_up(self, names: Sequence[str], timeout_seconds: float) -> list[TaskStatus]:
        """Poll status until every task reports ``ok`` (or ``taskDisabled``)."""
        return wait_until_healthy(self.client.status, names, timeout_seconds, self.poll_interval_seconds)

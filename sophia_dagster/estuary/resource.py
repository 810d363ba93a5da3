"""The runtime interface every Estuary resource implements, and the control-plane implementation.

``EstuaryRuntime`` is what assets, sensors and MCP tools program against:

- dev/prod bind :class:`EstuaryWorkspace` (Estuary's control plane over HTTP),
- local binds the embedded data plane (``sophia_dagster.estuary.local``), which runs the same catalog in-process.
"""

from __future__ import annotations

import os
import time
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from sophia_dagster.config import ESTUARY_PUBLIC_ANON_KEY
from sophia_dagster.estuary.catalog import (
    PLATFORM_CATALOG_DIR,
    SECTIONS,
    Catalog,
    iter_placeholders,
    load_catalog,
    resolve_placeholders,
)
from sophia_dagster.estuary.client import ZERO_PUB_ID, DraftSpec, EstuaryClient
from sophia_dagster.estuary.errors import EstuaryError, TaskNotReady
from sophia_dagster.estuary.http import RetryPolicy
from sophia_dagster.estuary.models import PublishResult, TaskStats, TaskStatus

RESOURCE_KEY = "estuary"
"""The resource key assets, checks and the sensor look the runtime up under by default."""
DEFAULT_PG_URL = "https://eyrcnmuzzyriypdajwdk.supabase.co/rest/v1"
DEFAULT_AGENT_URL = "https://api.estuary.dev"
DEFAULT_ENCRYPTION_URL = "https://config-encryption.estuary.dev/"
DEFAULT_DATA_PLANE = "ops/dp/public/gcp-us-central1-c1"


class EstuaryRuntime(dg.ConfigurableResource):
    """Operations on the Estuary tasks of a catalog, whatever runs them.

    Names are catalog names (``sophia/postgres-cdc``). Every method raises an
    :class:`~sophia_dagster.estuary.errors.EstuaryError` subclass on failure, never one carrying a secret.
    """

    catalog_path: str = Field(
        default=str(PLATFORM_CATALOG_DIR),
        description="A flow.yaml file, or a directory whose *.flow.yaml files (and their imports) form the catalog.",
    )
    caught_up_timeout_seconds: float = Field(
        default=900.0, description="How long materializing a task waits for it to be healthy and caught up."
    )

    def load_catalog(self) -> Catalog:
        """Load and validate the catalog this runtime publishes (placeholders unresolved)."""
        return load_catalog(self.catalog_path)

    @abstractmethod
    def publish(self, names: Sequence[str] | None = None, *, dry_run: bool = False) -> PublishResult:
        """Publish the named tasks (all tasks when ``None``) with the collections they bind.

        ``dry_run`` builds and validates without activating anything. Raises ``PublicationFailed``
        (``ConcurrentChangeError`` when a spec changed since it was read) with Estuary's errors.
        """

    @abstractmethod
    def pause(self, name: str) -> PublishResult:
        """Stop a task's shards (``shards.disable: true``) without deleting anything."""

    @abstractmethod
    def resume(self, name: str) -> PublishResult:
        """Restart a paused task (``shards.disable: false``)."""

    @abstractmethod
    def status(self, names: Sequence[str]) -> list[TaskStatus]:
        """Current status of each named spec, in the order asked."""

    @abstractmethod
    def stats(self, names: Sequence[str], since: datetime) -> list[TaskStats]:
        """Hourly stats rows of the named specs whose bucket ends after ``since``."""

    @abstractmethod
    def wait_until_caught_up(self, names: Sequence[str], timeout_seconds: float) -> list[TaskStatus]:
        """Block until every named task is healthy and has processed what its source holds now.

        Raises ``TaskNotReady`` naming the tasks still behind after ``timeout_seconds``.
        """

    def materialize(
        self, context: dg.AssetExecutionContext, task: str, selected: Mapping[dg.AssetKey, int]
    ) -> Iterator[dg.MaterializeResult]:
        """Bring ``task`` up to date and yield one MaterializeResult per selected asset.

        ``selected`` maps each selected asset key to the index of its binding in the task.
        The default publishes the task, waits until it is caught up and reports pub_id, status and
        the documents/bytes each binding moved in the current hour; runtimes may override it.
        """
        started = datetime.now(UTC)
        published = self.publish([task])
        context.log.info(f"published {task} as {published.pub_id} ({published.status})")
        (status,) = self.wait_until_caught_up([task], self.caught_up_timeout_seconds)
        rows = self.stats([task], since=started)
        collections = self.load_catalog().collections_of(task)
        for key, index in selected.items():
            yield dg.MaterializeResult(
                asset_key=key, metadata=binding_metadata(published, status, rows, collections[index])
            )


def binding_metadata(
    published: PublishResult, status: TaskStatus, rows: Sequence[TaskStats], collection: str
) -> dict[str, dg.MetadataValue]:
    """Metadata reported for one binding of a materialized task."""
    docs = sum(row.bindings[collection].docs for row in rows if collection in row.bindings)
    size = sum(row.bindings[collection].bytes for row in rows if collection in row.bindings)
    return {
        "estuary/pub_id": dg.MetadataValue.text(published.pub_id),
        "estuary/status": dg.MetadataValue.text(status.status),
        "estuary/collection": dg.MetadataValue.text(collection),
        "estuary/docs_this_hour": dg.MetadataValue.int(docs),
        "estuary/bytes_this_hour": dg.MetadataValue.int(size),
    }


class EstuaryWorkspace(EstuaryRuntime):
    """Estuary's hosted control plane (dev/prod): publishes the catalog and reads status and stats over HTTP.

    Bind ``api_token`` with ``dg.EnvVar("ESTUARY_API_TOKEN")`` so the token is never stored in run config.
    ``${ENV_VAR}`` placeholders in the catalog are resolved from the process environment when publishing.
    """

    api_token: str = Field(repr=False, description="Estuary refresh token (base64 of {id, secret}) or an access JWT.")
    pg_url: str = Field(default=DEFAULT_PG_URL, description="Estuary's PostgREST base URL.")
    agent_url: str = Field(default=DEFAULT_AGENT_URL, description="Estuary's agent API base URL.")
    encryption_url: str = Field(default=DEFAULT_ENCRYPTION_URL, description="Estuary's config-encryption service.")
    anon_key: str = Field(default=ESTUARY_PUBLIC_ANON_KEY, description="Estuary's public PostgREST key (not a secret).")
    data_plane_name: str = Field(default=DEFAULT_DATA_PLANE, description="Data plane new tasks are placed in.")
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
        unknown = [name for name in tasks if name not in catalog.tasks]
        if unknown:
            raise EstuaryError(f"not tasks of the catalog at {self.catalog_path}: {', '.join(unknown)}")
        specs = list(dict.fromkeys(tasks + [c for task in tasks for c in catalog.collections_of(task)]))
        live = {spec.catalog_name: spec.last_pub_id for spec in self.client.live_specs(specs)}
        drafts = [
            DraftSpec(name, catalog.spec_type(name), self._resolved(catalog, name), live.get(name, ZERO_PUB_ID))
            for name in specs
        ]
        return self.client.publish(drafts, dry_run=dry_run, detail=f"sophia_dagster: {', '.join(tasks)}")

    def _resolved(self, catalog: Catalog, name: str) -> dict[str, Any]:
        """The spec with placeholders filled from the environment; the values are registered for redaction."""
        spec = catalog.spec(name)
        path = (SECTIONS[catalog.spec_type(name)], name)
        resolved = resolve_placeholders(spec, os.environ, catalog.files[name], path)
        self.client.redactor.add(os.environ[var] for var, _ in iter_placeholders(spec))
        return resolved

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
        deadline = time.monotonic() + timeout_seconds
        while True:
            statuses = self.client.status(names)
            behind = [s for s in statuses if not s.healthy]
            if not behind:
                return statuses
            if time.monotonic() > deadline:
                detail = "; ".join(f"{s.catalog_name}: {s.status} {s.message}".strip() for s in behind)
                raise TaskNotReady(f"not healthy after {timeout_seconds:.1f}s: {detail}")
            time.sleep(self.poll_interval_seconds)

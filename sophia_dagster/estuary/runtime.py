"""The runtime interface every Estuary resource implements.

``EstuaryRuntime`` is what assets, checks, sensors and tools program against. Implementations:
:class:`~sophia_dagster.estuary.workspace.EstuaryWorkspace` (Estuary's control plane over HTTP) and, outside
this package, any runtime that runs the same catalog elsewhere (such as an embedded data plane).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from sophia_dagster.estuary.catalog import Catalog, load_catalog
from sophia_dagster.estuary.models import PublishResult, TaskStats, TaskStatus

RESOURCE_KEY = "estuary"
"""The resource key assets, checks and the sensor look the runtime up under by default."""


class EstuaryRuntime(dg.ConfigurableResource):
    """Operations on the Estuary tasks of a catalog, whatever runs them.

    Names are catalog names (``acme/postgres-cdc``). Every method raises an
    :class:`~sophia_dagster.estuary.errors.EstuaryError` subclass on failure, never one carrying a secret.
    """

    catalog_path: str = Field(
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

        ``dry_run`` builds and validates without activating anything. Raises ``PublicationFailedError``
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

        Raises ``TaskNotReadyError`` naming the tasks still behind after ``timeout_seconds``.
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

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
from pydantic import Field, PrivateAttr

from sophia_dagster.estuary.catalog import Catalog, load_catalog
from sophia_dagster.estuary.errors import EstuaryError
from sophia_dagster.estuary.metadata import EstuaryMetadataSet
from sophia_dagster.estuary.models import PublishResult, TaskStats, TaskStatus

RESOURCE_KEY = "estuary"
"""The resource key assets, checks and the sensor look the runtime up under by default."""


class EstuaryRuntime(dg.ConfigurableResource):
    """Operations on the Estuary tasks of a catalog, whatever runs them.

    Names are catalog names (``acme/postgres-cdc``). Every method raises an
    :class:`~sophia_dagster.estuary.errors.EstuaryError` subclass on failure, never one carrying a secret.
    """

    catalog_path: str | None = Field(
        default=None,
        description=(
            "A flow.yaml file, or a directory whose *.flow.yaml files (and their imports) form the catalog; only "
            "needed outside Dagster: assets, checks and the sensor hand over the catalog they were built from."
        ),
    )
    caught_up_timeout_seconds: float = Field(
        default=900.0, description="How long materializing a task waits for it to be healthy and caught up."
    )

    _catalog: Catalog | None = PrivateAttr(default=None)

    def use_catalog(self, catalog: Catalog) -> None:
        """Make ``catalog`` the one this runtime publishes and runs (builders pass the catalog of the graph)."""
        self._catalog = catalog

    def load_catalog(self) -> Catalog:
        """The catalog this runtime publishes (placeholders unresolved): the one in use, else ``catalog_path``'s."""
        if self._catalog is not None:
            return self._catalog
        if self.catalog_path is None:
            raise EstuaryError(f"{type(self).__name__} has no catalog: set catalog_path or call use_catalog()")
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
        **EstuaryMetadataSet(
            pub_id=published.pub_id,
            status=status.status,
            collection=collection,
            docs_this_hour=docs,
            bytes_this_hour=size,
        )
    }

"""The ``estuary/*`` metadata vocabulary: one typed set for specs, materializations, checks and sensor events.

Every runtime (the control plane, an embedded data plane) and every builder reports through
:class:`EstuaryMetadataSet`, so a key means the same thing wherever it appears and is always namespaced.
"""

from __future__ import annotations

import dagster as dg

# Dagster 1.13 exports the base class of its own metadata sets (TableMetadataSet, ...) only from here.
from dagster._core.definitions.metadata import NamespacedMetadataSet


class EstuaryMetadataSet(NamespacedMetadataSet):
    """Metadata of Estuary assets and events, each key prefixed ``estuary/``.

    Example:
        ``dg.MaterializeResult(metadata={**EstuaryMetadataSet(task="acme/pg", collection="acme/pg/deals")})``
    """

    task: str | None = None
    collection: str | None = None
    connector_image: str | None = None
    binding_resource: dg.JsonMetadataValue | None = None
    key: dg.JsonMetadataValue | None = None
    pub_id: str | None = None
    publication: str | None = None
    changes: str | None = None
    derivation_language: str | None = None
    status: str | None = None
    message: str | None = None
    last_pub_id: str | None = None
    errors: dg.JsonMetadataValue | None = None
    docs: int | None = None
    bytes: int | None = None
    docs_this_hour: int | None = None
    bytes_this_hour: int | None = None
    stats_hour: str | None = None
    runnable_here: bool | None = None
    reason: str | None = None
    rows_inserted: int | None = None
    rows_updated: int | None = None
    rows_deleted: int | None = None
    rows_backfilled: int | None = None
    lsn: str | None = None
    lag_bytes: int | None = None
    modified_through: str | None = None
    duration_seconds: float | None = None

    @classmethod
    def namespace(cls) -> str:
        return "estuary"

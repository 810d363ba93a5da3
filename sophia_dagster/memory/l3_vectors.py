"""L3: a vector knowledge base of documents, searched by cosine similarity with metadata filters.

A document is `{"id": str, "content": str, "metadata": {...}}`. An asset writes a list of documents (or a
table with those columns) and reads back the list; `search` finds the nearest documents to a query
text. Backends: `PgVectorKnowledgeStore` (local) and `SnowflakeKnowledgeStore` (prod).
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sophia_dagster.memory import codec
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.memory.store import TierIOManager, TierStore

FILTER_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
FilterValue = str | int | float | bool


@dataclass(frozen=True)
class Hit:
    """A document found by a search, with its cosine similarity to the query (1 = same direction)."""

    id: str
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    score: float = 0.0


def documents(value: Any, ref: OutputRef) -> list[dict[str, Any]]:
    """The value of an asset as normalized documents; a clear error naming the asset for anything else."""
    rows = codec.to_arrow(value).to_pylist() if codec.kind_of(value) in codec.TABLE_KINDS else value
    if not isinstance(rows, list):
        raise TypeError(f"{ref}: L3 stores a list of documents, got {type(value).__qualname__}")
    normalized, seen = [], set()
    for position, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("content"), str):
            raise ValueError(f"{ref}: document {position} needs a string 'content', got {row!r:.200}")
        doc_id = str(row.get("id", position))
        if doc_id in seen:
            raise ValueError(f"{ref}: document id {doc_id!r} appears twice")
        seen.add(doc_id)
        metadata = row.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValueError(f"{ref}: document {doc_id!r} metadata must be an object, got {metadata!r:.200}")
        normalized.append({"id": doc_id, "content": row["content"], "metadata": metadata})
    return normalized


def check_filters(filters: Mapping[str, FilterValue] | None) -> dict[str, FilterValue]:
    """Metadata equality filters, keys checked so they can be placed in SQL paths safely."""
    filters = dict(filters or {})
    for key, value in filters.items():
        if not FILTER_KEY.match(key):
            raise ValueError(f"metadata filter key {key!r} must be a plain identifier")
        if not isinstance(value, FilterValue):
            raise ValueError(f"metadata filter {key!r} must be a string, number or boolean, got {value!r}")
    return filters


class KnowledgeStore(TierStore):
    """A vector knowledge base: whole-asset writes and reads, plus single-document adds and search."""

    @abstractmethod
    def add(self, ref: OutputRef, docs: list[dict[str, Any]]) -> None:
        """Insert or replace the given documents under `ref`, leaving its other documents in place."""

    @abstractmethod
    def search(self, query: str, limit: int = 5, filters: Mapping[str, FilterValue] | None = None) -> list[Hit]:
        """The `limit` documents closest to `query` whose metadata equals every filter."""


class KnowledgeIOManager(TierIOManager):
    """L3 IO manager: an asset's documents embedded into the vector store, partitions replaced."""

    store: KnowledgeStore

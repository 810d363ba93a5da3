"""New captures and materializations written as Flow catalog YAML, validated by the same loader as the graph."""

from __future__ import annotations

import copy
import io
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from sophia_dagster.estuary.catalog import Catalog, CatalogError, load_catalog
from sophia_dagster.mcp.discovery import DiscoveredTable

POSTGRES_IMAGE = "ghcr.io/estuary/source-postgres:v3"
SNOWFLAKE_IMAGE = "ghcr.io/estuary/materialize-snowflake:v4"
META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["op", "source"],
    "properties": {
        "op": {"type": "string", "enum": ["c", "u", "d"], "description": "change operation: create, update or delete"},
        "source": {
            "type": "object",
            "properties": {
                "ts_ms": {"type": "integer"},
                "schema": {"type": "string"},
                "table": {"type": "string"},
                "snapshot": {"type": "boolean"},
                "loc": {"type": "array", "items": {"type": "integer"}},
                "txid": {"type": "integer"},
            },
        },
        "before": {"type": "object", "description": "the row before an update"},
    },
}


class AuthoringError(ValueError):
    """A new task cannot be written: the name is taken or invalid, or the result does not load."""


def slug(name: str) -> str:
    """A lower-case identifier made of a catalog name (for file, slot and table names)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def capture_document(
    name: str, tables: Sequence[DiscoveredTable], *, database: str, endpoint: Mapping[str, Any]
) -> dict[str, Any]:
    """A catalog with one PostgreSQL CDC capture of ``tables`` and a collection per table.

    ``endpoint`` holds the connection settings (placeholders such as ``${POSTGRES_CAPTURE_PASSWORD}``).
    """
    config = {
        **endpoint,
        "database": database,
        "advanced": {"publicationName": f"{slug(name)}_publication", "slotName": f"{slug(name)}_slot"},
    }
    return {
        "captures": {
            name: {
                "endpoint": {"connector": {"image": POSTGRES_IMAGE, "config": config}},
                "bindings": [
                    {"resource": {"namespace": t.schema, "stream": t.name}, "target": f"{name}/{t.name}"}
                    for t in tables
                ],
            }
        },
        "collections": {f"{name}/{t.name}": _collection(t) for t in tables},
    }


def _collection(table: DiscoveredTable) -> dict[str, Any]:
    return {
        "key": [f"/{column}" for column in table.key],
        "schema": {
            "type": "object",
            "description": f"{table.schema}.{table.name}",
            "required": [*table.required, "_meta"],
            "properties": {"_meta": copy.deepcopy(META_SCHEMA), **table.columns},
        },
    }


def materialization_document(
    name: str, collections: Sequence[str], catalog: Catalog, *, endpoint: Mapping[str, Any], catalog_dir: Path
) -> dict[str, Any]:
    """A catalog with one Snowflake materialization of ``collections``, importing the files that define them."""
    unknown = [c for c in collections if c not in catalog.collections]
    if unknown:
        raise AuthoringError(f"not collections of the catalog: {', '.join(unknown)}")
    imports = sorted({os.path.relpath(catalog.files[c], catalog_dir) for c in collections})
    return {
        "import": imports,
        "materializations": {
            name: {
                "endpoint": {"connector": {"image": SNOWFLAKE_IMAGE, "config": dict(endpoint)}},
                "bindings": [
                    {
                        "resource": {"table": table, "delta_updates": False},
                        "source": collection,
                        "fields": {"recommended": True},
                    }
                    for collection, table in table_names(collections).items()
                ],
            }
        },
    }


def table_names(collections: Sequence[str]) -> dict[str, str]:
    """A warehouse table per collection: its last name segment, or the last two where that would collide."""
    last = [c.rsplit("/", 1)[-1] for c in collections]
    return {c: slug(t if last.count(t) == 1 else "_".join(c.split("/")[-2:])) for c, t in zip(collections, last)}


def render(document: Mapping[str, Any], tool: str) -> str:
    """The catalog file's text: a header saying who wrote it, then the document as YAML."""
    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = False
    yaml.width = 120
    out = io.StringIO()
    yaml.dump(dict(document), out)
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"# Written by sophia-mcp ({tool}) on {written}. Secrets are ${{VAR}} placeholders.\n" + out.getvalue()


def write_catalog_file(catalog_dir: Path, name: str, text: str, existing: Catalog) -> Path:
    """Write ``text`` as a new ``*.flow.yaml`` in ``catalog_dir`` and prove the folder still loads.

    Nothing is left behind when the name is taken or the folder does not load with the new file.
    """
    if name in existing.tasks or name in existing.collections:
        raise AuthoringError(f"{name!r} already exists in the catalog ({existing.files.get(name, 'unknown file')})")
    path = catalog_dir / f"{slug(name)}.flow.yaml"
    try:
        with open(path, "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise AuthoringError(f"{path.name} already exists in {catalog_dir}") from None
    try:
        load_catalog(catalog_dir)
    except CatalogError as exc:
        path.unlink()
        raise AuthoringError(f"the new catalog file does not load, nothing was written: {exc}") from None
    return path

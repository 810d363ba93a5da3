"""Pydantic models of Estuary's ``flow.yaml`` catalog format: captures, collections, materializations.

The models follow Estuary's catalog format closely enough that the same files publish with ``flowctl``.
A :class:`Catalog` is every spec of every loaded file, with the file each came from.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IMAGE = re.compile(r"^[a-z0-9][a-z0-9._\-/]*(:\d+)?[a-z0-9._\-/]*:[\w.\-]+$")

SpecType = Literal["capture", "collection", "materialization"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Shards(BaseModel):
    """Shard template of a task; only ``disable`` matters here, other knobs pass through."""

    model_config = ConfigDict(extra="allow", frozen=True)
    disable: bool = False


class Connector(_Model):
    """A connector image and its endpoint configuration (may hold ``${ENV}`` placeholders or a ``sops`` envelope)."""

    image: str
    config: dict[str, Any]

    @field_validator("image")
    @classmethod
    def _image_has_tag(cls, value: str) -> str:
        if not IMAGE.match(value):
            raise ValueError(f"connector image {value!r} must look like 'ghcr.io/estuary/source-x:v1'")
        return value

    @property
    def name(self) -> str:
        """The image name without registry path and tag, e.g. ``source-postgres``."""
        return self.image.rsplit(":", 1)[0].rsplit("/", 1)[-1]

    @property
    def tag(self) -> str:
        """The image tag with its colon, e.g. ``:v3`` (as Estuary's ``connector_tags`` stores it)."""
        return ":" + self.image.rsplit(":", 1)[1]

    @property
    def image_name(self) -> str:
        """The image without its tag."""
        return self.image.rsplit(":", 1)[0]


class Endpoint(_Model):
    """A task endpoint; only connector images are supported."""

    connector: Connector


class CaptureBinding(_Model):
    """One captured resource (table, stream, object) written into a collection."""

    resource: dict[str, Any]
    target: str
    disable: bool = False
    backfill: int = 0


class SourceRef(_Model):
    """The long form of a materialization binding's source."""

    name: str
    notBefore: str | None = None
    notAfter: str | None = None
    partitions: dict[str, Any] | None = None


class MaterializationBinding(_Model):
    """One collection materialized into an endpoint resource (a table)."""

    resource: dict[str, Any]
    source: str | SourceRef
    disable: bool = False
    fields: dict[str, Any] | None = None
    priority: int | None = None
    backfill: int = 0
    onIncompatibleSchemaChange: str | None = None

    @property
    def source_name(self) -> str:
        """The collection this binding reads."""
        return self.source if isinstance(self.source, str) else self.source.name


class _TaskModel(_Model):
    """What captures and materializations share: a connector endpoint and a shard template."""

    endpoint: Endpoint
    shards: Shards = Field(default_factory=Shards)
    expectPubId: str | None = None
    delete: bool | None = None


class Capture(_TaskModel):
    """A capture task: a source connector writing into collections."""

    bindings: list[CaptureBinding] = Field(default_factory=list)
    interval: str | None = None
    autoDiscover: dict[str, Any] | None = None


class Materialization(_TaskModel):
    """A materialization task: collections written into an endpoint (a warehouse)."""

    bindings: list[MaterializationBinding] = Field(default_factory=list)
    sourceCapture: str | None = None
    source: dict[str, Any] | None = None
    onIncompatibleSchemaChange: str | None = None


class Collection(_Model):
    """A collection: a key plus a JSON schema (or a write/read schema pair)."""

    key: list[str] = Field(min_length=1)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    writeSchema: dict[str, Any] | None = None
    readSchema: dict[str, Any] | None = None
    projections: dict[str, Any] | None = None
    journals: dict[str, Any] | None = None
    derive: dict[str, Any] | None = None
    expectPubId: str | None = None
    delete: bool | None = None

    @field_validator("key")
    @classmethod
    def _pointers(cls, value: list[str]) -> list[str]:
        for pointer in value:
            if not pointer.startswith("/") or pointer == "/":
                raise ValueError(f"key {pointer!r} is not a JSON pointer like '/id'")
        return value

    @model_validator(mode="after")
    def _one_schema(self) -> Collection:
        if (self.schema_ is None) == (self.writeSchema is None):
            raise ValueError("a collection needs either 'schema' or 'writeSchema' (with 'readSchema'), not both")
        if (self.writeSchema is None) != (self.readSchema is None):
            raise ValueError("'writeSchema' and 'readSchema' go together")
        return self

    @property
    def document_schema(self) -> dict[str, Any]:
        """The schema documents are read with (``schema``, else ``writeSchema``)."""
        return self.schema_ if self.schema_ is not None else (self.writeSchema or {})


class CatalogFile(_Model):
    """The content of one ``flow.yaml`` file."""

    import_: list[str] = Field(default_factory=list, alias="import")
    captures: dict[str, Capture] = Field(default_factory=dict)
    collections: dict[str, Collection] = Field(default_factory=dict)
    materializations: dict[str, Materialization] = Field(default_factory=dict)


Task = Capture | Materialization
SECTIONS: dict[SpecType, str] = {
    "capture": "captures",
    "collection": "collections",
    "materialization": "materializations",
}


class Catalog(_Model):
    """A loaded, validated catalog: every spec of every file, and the file each came from."""

    captures: dict[str, Capture] = Field(default_factory=dict)
    collections: dict[str, Collection] = Field(default_factory=dict)
    materializations: dict[str, Materialization] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)

    @property
    def tasks(self) -> dict[str, Task]:
        """Captures and materializations by name (the things that run)."""
        return {**self.captures, **self.materializations}

    def spec_type(self, name: str) -> SpecType:
        """Whether ``name`` is a capture, collection or materialization."""
        for spec_type, section in SECTIONS.items():
            if name in getattr(self, section):
                return spec_type
        raise KeyError(f"{name!r} is not in the Estuary catalog")

    def model(self, name: str) -> Capture | Collection | Materialization:
        """The model of the spec called ``name``."""
        return getattr(self, SECTIONS[self.spec_type(name)])[name]

    def spec(self, name: str) -> dict[str, Any]:
        """The JSON spec of ``name`` as Estuary stores it, placeholders left unresolved."""
        return self.model(name).model_dump(mode="json", by_alias=True, exclude_unset=True)

    def collections_of(self, task: str) -> list[str]:
        """The collections a task writes (capture) or reads (materialization), in binding order."""
        model = self.tasks[task]
        if isinstance(model, Capture):
            return [b.target for b in model.bindings]
        return [b.source_name for b in model.bindings]

    def location(self, name: str) -> str:
        """``file: section.name``, for messages."""
        return f"{self.files[name]}: {SECTIONS[self.spec_type(name)]}.{name}"

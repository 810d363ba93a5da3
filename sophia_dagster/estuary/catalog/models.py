"""Pydantic models of Estuary's ``flow.yaml`` catalog format: captures, collections, materializations.

The models follow Estuary's catalog format closely enough that the same files publish with ``flowctl``.
A :class:`Catalog` is every spec of every loaded file, with the file each came from. Derivations
(collections with ``derive``) are tasks too: they read other collections (Estuary runs them; the embedded data plane
runs SQLite ones, see :mod:`sophia_dagster.dataplane.derive`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sophia_dagster.estuary.catalog.schemas import SchemaIndex

IMAGE = re.compile(r"^[a-z0-9][a-z0-9._\-/]*(:\d+)?[a-z0-9._\-/]*:[\w.\-]+$")

SpecType = Literal["capture", "collection", "materialization"]
CATALOG_NAME = re.compile(r"^[\w.\-]+(/[\w.\-]+)+$")
DERIVE_LANGUAGES = ("sqlite", "typescript", "python", "connector")
SchemaValue = dict[str, Any] | str


def valid_name(name: str) -> bool:
    """Whether ``name`` is a catalog name like ``prefix/name`` (no empty, ``.`` or ``..`` parts)."""
    return bool(CATALOG_NAME.match(name)) and not any(part in {".", ".."} for part in name.split("/"))


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


def source_name(source: str | SourceRef) -> str:
    """The collection a ``source`` (short or long form) names."""
    return source if isinstance(source, str) else source.name


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
        return source_name(self.source)


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
    sourceCapture: str | dict[str, Any] | None = None
    source: str | dict[str, Any] | None = None
    onIncompatibleSchemaChange: str | None = None


class Transform(_Model):
    """One transform of a derivation: a source collection, how it is shuffled and the lambda applied."""

    name: str
    source: str | SourceRef
    shuffle: str | dict[str, Any] = "any"
    lambda_: str | None = Field(default=None, alias="lambda")
    priority: int | None = None
    readDelay: str | None = None
    disable: bool = False
    backfill: int = 0

    @property
    def source_name(self) -> str:
        """The collection this transform reads."""
        return source_name(self.source)


class Derivation(_Model):
    """How a collection is derived from others (``derive``): a language (``using``) and transforms."""

    using: dict[str, Any]
    transforms: list[Transform] = Field(default_factory=list)
    shuffleKeyTypes: list[str] | None = None
    shards: Shards = Field(default_factory=Shards)

    @field_validator("using")
    @classmethod
    def _one_language(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) != 1 or next(iter(value)) not in DERIVE_LANGUAGES:
            raise ValueError(f"'using' needs exactly one of {', '.join(DERIVE_LANGUAGES)}, got {sorted(value)}")
        return value

    @property
    def language(self) -> str:
        """``sqlite``, ``typescript``, ``python`` or ``connector``."""
        return next(iter(self.using))


class Collection(_Model):
    """A collection: a key plus a JSON schema (or a write/read schema pair), derived when it has ``derive``.

    A schema is bundled when loaded (files it names are inlined); one behind a URL stays a string until publishing.
    """

    key: list[str] = Field(min_length=1)
    schema_: SchemaValue | None = Field(default=None, alias="schema")
    writeSchema: SchemaValue | None = None
    readSchema: SchemaValue | None = None
    projections: dict[str, Any] | None = None
    journals: dict[str, Any] | None = None
    derive: Derivation | None = None
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
        """The schema documents are written with (``schema``, else ``writeSchema``); empty while behind a URL."""
        schema = self.schema_ if self.schema_ is not None else self.writeSchema
        return schema if isinstance(schema, dict) else {}


class CatalogFile(_Model):
    """The content of one ``flow.yaml`` file."""

    schema_url: str | None = Field(default=None, alias="$schema")
    import_: list[str] = Field(default_factory=list, alias="import")
    captures: dict[str, Capture] = Field(default_factory=dict)
    collections: dict[str, Collection] = Field(default_factory=dict)
    materializations: dict[str, Materialization] = Field(default_factory=dict)
    tests: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)


Task = Capture | Materialization | Collection
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
    tests: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)

    @property
    def derivations(self) -> dict[str, Collection]:
        """Collections with ``derive``, by name: tasks that Estuary runs."""
        return {name: c for name, c in self.collections.items() if c.derive is not None}

    @property
    def tasks(self) -> dict[str, Task]:
        """Captures, derivations and materializations by name (the things that run)."""
        return {**self.captures, **self.derivations, **self.materializations}

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

    def bindings_of(self, task: str) -> list[tuple[str, str]]:
        """``(collection, path)`` of each binding of a task: what it writes (capture) or reads (the others)."""
        model = self.tasks[task]
        where = f"{SECTIONS[self.spec_type(task)]}.{task}"
        if isinstance(model, Capture):
            return [(b.target, f"{where}.bindings[{i}].target") for i, b in enumerate(model.bindings)]
        if isinstance(model, Materialization):
            return [(b.source_name, f"{where}.bindings[{i}].source") for i, b in enumerate(model.bindings)]
        transforms = model.derive.transforms if model.derive else []
        return [(t.source_name, f"{where}.derive.transforms[{i}].source") for i, t in enumerate(transforms)]

    def collections_of(self, task: str) -> list[str]:
        """The collections a task writes (capture) or reads (materialization, derivation), in binding order."""
        return [collection for collection, _ in self.bindings_of(task)]

    def external_collections(self) -> list[str]:
        """Collections the tasks bind that are not in the catalog (they must be live in Estuary)."""
        bound = {c for task in self.tasks for c in self.collections_of(task)}
        return sorted(bound - set(self.collections))

    def schema_properties(self, name: str) -> dict[str, Any] | None:
        """A collection's top-level properties through ``$ref`` and ``allOf``; ``None`` when the schema says none."""
        return SchemaIndex(self.collections[name].document_schema).properties()

    def sets_disable(self, name: str) -> bool:
        """Whether the catalog itself says if a task runs (``shards.disable``, ``derive.shards.disable``)."""
        model = self.tasks[name]
        if isinstance(model, Collection):
            return model.derive is not None and "disable" in model.derive.shards.model_fields_set
        return "disable" in model.shards.model_fields_set

    def location(self, name: str) -> str:
        """``file: section.name``, for messages."""
        return f"{self.files[name]}: {SECTIONS[self.spec_type(name)]}.{name}"

"""Estuary Flow catalog as code: pydantic models of ``flow.yaml``, a loader, and checks.

The models follow Estuary's catalog format closely enough that the same files publish with
``flowctl``. Secrets are written as ``${ENV_VAR}`` placeholders; they stay unresolved in the
loaded catalog and are only substituted by :func:`resolve_placeholders` at publish time.

Every problem is reported as a :class:`CatalogError` listing the file, the path inside it
(``captures.sophia/pg.bindings[2].target``) and the reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PLATFORM_CATALOG_DIR = Path(__file__).resolve().parent.parent / "defs" / "estuary"
"""Where this platform's own ``*.flow.yaml`` files live."""

CATALOG_NAME = re.compile(r"^[\w.\-]+(/[\w.\-]+)+$")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
IMAGE = re.compile(r"^[a-z0-9][a-z0-9._\-/]*(:\d+)?[a-z0-9._\-/]*:[\w.\-]+$")

SpecType = Literal["capture", "collection", "materialization"]
PathPart = str | int


class CatalogIssue(NamedTuple):
    """One problem found in a catalog file."""

    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path or '<root>'}: {self.reason}"


class CatalogError(ValueError):
    """A catalog file is unreadable or invalid; ``issues`` says where and why."""

    def __init__(self, issues: Sequence[CatalogIssue]) -> None:
        self.issues = list(issues)
        super().__init__("invalid Estuary catalog:\n" + "\n".join(f"  {i}" for i in self.issues))


def format_path(parts: Iterable[PathPart]) -> str:
    """Render ``('captures', 'sophia/pg', 'bindings', 2, 'target')`` as ``captures.sophia/pg.bindings[2].target``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


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


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in result
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(None, None, f"unhashable key {key!r}", key_node.start_mark) from exc
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=deep)
    return result


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_catalog_text(text: str, file: str) -> CatalogFile:
    """Parse the YAML text of one catalog file; any problem is a :class:`CatalogError`."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except (yaml.YAMLError, RecursionError) as exc:
        raise CatalogError([CatalogIssue(file, "", f"not valid YAML: {exc}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CatalogError([CatalogIssue(file, "", f"expected a mapping at the top, got {type(data).__name__}")])
    try:
        return CatalogFile.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(
            [CatalogIssue(file, format_path(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        ) from None
    except RecursionError:
        raise CatalogError([CatalogIssue(file, "", "document is nested too deeply")]) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError([CatalogIssue(str(path), "", f"cannot read file: {exc}")]) from None


class _Loader:
    """Loads files (following ``import``s), merges them and records where each spec came from."""

    def __init__(self) -> None:
        self.seen: set[Path] = set()
        self.specs: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS.values()}
        self.where: dict[str, tuple[str, str]] = {}
        self.issues: list[CatalogIssue] = []

    def load(self, path: Path) -> None:
        path = path.resolve()
        if path in self.seen:
            return
        self.seen.add(path)
        parsed = parse_catalog_text(_read(path), str(path))
        for index, target in enumerate(parsed.import_):
            imported = (path.parent / target).resolve()
            if "://" in target or not imported.is_file():
                self.issues.append(CatalogIssue(str(path), f"import[{index}]", f"no such local file: {target!r}"))
                continue
            self.load(imported)
        for section in SECTIONS.values():
            for name, model in getattr(parsed, section).items():
                self._add(str(path), section, name, model)

    def _add(self, file: str, section: str, name: str, model: BaseModel) -> None:
        path = f"{section}.{name}"
        if not CATALOG_NAME.match(name) or any(part in {".", ".."} for part in name.split("/")):
            self.issues.append(CatalogIssue(file, path, f"invalid catalog name {name!r}: expected 'prefix/name'"))
        if name in self.where:
            other_file, other_path = self.where[name]
            self.issues.append(
                CatalogIssue(file, path, f"duplicate catalog name, also defined at {other_file}: {other_path}")
            )
            return
        self.where[name] = (file, path)
        self.specs[section][name] = model

    def catalog(self) -> Catalog:
        catalog = Catalog(
            captures=self.specs["captures"],
            collections=self.specs["collections"],
            materializations=self.specs["materializations"],
            files={name: file for name, (file, _) in self.where.items()},
        )
        self.issues.extend(check_references(catalog))
        if self.issues:
            raise CatalogError(self.issues)
        return catalog


def check_references(catalog: Catalog) -> list[CatalogIssue]:
    """Cross-spec checks: bindings name declared collections, each collection has one capture, keys are in schemas."""
    return [*_capture_issues(catalog), *_materialization_issues(catalog), *_key_issues(catalog)]


def _capture_issues(catalog: Catalog) -> Iterator[CatalogIssue]:
    writers: dict[str, str] = {}
    for name, capture in catalog.captures.items():
        for index, binding in enumerate(capture.bindings):
            where = (catalog.files[name], f"captures.{name}.bindings[{index}].target")
            if binding.target not in catalog.collections:
                yield CatalogIssue(*where, f"collection {binding.target!r} is not declared")
            elif binding.target in writers:
                yield CatalogIssue(
                    *where, f"collection {binding.target!r} is already bound by {writers[binding.target]}"
                )
            writers.setdefault(binding.target, f"capture {name}")


def _materialization_issues(catalog: Catalog) -> Iterator[CatalogIssue]:
    for name, materialization in catalog.materializations.items():
        resources: list[dict[str, Any]] = []
        for index, binding in enumerate(materialization.bindings):
            where = f"materializations.{name}.bindings[{index}]"
            if binding.source_name not in catalog.collections:
                yield CatalogIssue(
                    catalog.files[name], f"{where}.source", f"reads missing collection {binding.source_name!r}"
                )
            if binding.resource in resources:
                yield CatalogIssue(
                    catalog.files[name], f"{where}.resource", "another binding already writes this resource"
                )
            resources.append(binding.resource)


def _key_issues(catalog: Catalog) -> Iterator[CatalogIssue]:
    for name, collection in catalog.collections.items():
        properties = collection.document_schema.get("properties")
        for index, pointer in enumerate(collection.key):
            if isinstance(properties, dict) and pointer.split("/")[1] not in properties:
                yield CatalogIssue(
                    catalog.files[name], f"collections.{name}.key[{index}]", f"{pointer!r} is not a schema property"
                )


def load_catalog(path: str | os.PathLike[str] = PLATFORM_CATALOG_DIR) -> Catalog:
    """Load a catalog from one ``flow.yaml`` file or every ``*.flow.yaml`` in a directory, following imports."""
    root = Path(path)
    files = sorted(root.glob("*.flow.yaml")) if root.is_dir() else [root]
    if not files:
        raise CatalogError([CatalogIssue(str(root), "", "no *.flow.yaml files found")])
    loader = _Loader()
    for file in files:
        loader.load(file)
    return loader.catalog()


def iter_placeholders(value: Any, path: Sequence[PathPart] = ()) -> Iterator[tuple[str, str]]:
    """Yield ``(variable, spec path)`` for every ``${VAR}`` placeholder inside ``value``."""
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            yield match.group(1), format_path(path)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from iter_placeholders(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_placeholders(item, (*path, index))


def resolve_placeholders(spec: Any, env: Mapping[str, str], file: str, path: Sequence[PathPart]) -> Any:
    """Return ``spec`` with every ``${VAR}`` replaced from ``env``; call only when publishing.

    A missing variable raises :class:`CatalogError` naming the variable and the spec path, never a value.
    """
    missing = [
        CatalogIssue(file, where, f"environment variable {var} is not set")
        for var, where in iter_placeholders(spec, path)
        if var not in env
    ]
    if missing:
        raise CatalogError(missing)
    return _substitute(spec, env)


def _substitute(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda match: env[match.group(1)], value)
    if isinstance(value, Mapping):
        return {key: _substitute(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, env) for item in value]
    return value

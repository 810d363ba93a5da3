"""Files a catalog points at, read into it the way ``flowctl`` inlines them before publishing.

A string where Estuary expects an object or a program names a file relative to the catalog file:
``config: endpoint.sops.yaml`` (an endpoint config, often sops-encrypted), a binding ``resource``, SQL
``lambda``/``migrations`` files, and schema files or URLs (bundled, see
:mod:`~sophia_dagster.estuary.catalog.schemas`). Remote schemas and derivation modules (TypeScript, Python)
are only needed by Estuary; they are read when publishing (:func:`inline_for_publication`), so loading a
catalog makes no network call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sophia_dagster.estuary.catalog.schemas import bundle_schema, file_url, is_remote, scope_url
from sophia_dagster.estuary.catalog.yaml12 import read_yaml
from sophia_dagster.estuary.errors import CatalogError, CatalogIssue, format_path

Fetch = Callable[[str], str]
STRUCTURED = frozenset({".yaml", ".yml", ".json"})
SCHEMA_FIELDS = ("schema", "writeSchema", "readSchema")
MODULE_LANGUAGES = ("typescript", "python")


class _Remote(LookupError):
    """A document behind a URL, read only when publishing."""


def is_file_reference(value: Any) -> bool:
    """A string Estuary reads as a relative file or URL (it has no whitespace), not inline content."""
    return isinstance(value, str) and bool(value) and not any(ch.isspace() for ch in value)


def _document(url: str, fetch: Fetch | None) -> Any:
    """The parsed document at ``url`` (YAML/JSON by extension, else its text)."""
    if is_remote(url):
        if fetch is None:
            raise _Remote(url)
        text, name = fetch(url), urlsplit(url).path
    else:
        path = Path(unquote(urlsplit(url).path))
        if not path.is_file():
            raise FileNotFoundError(str(path))
        text, name = path.read_text(encoding="utf-8"), str(path)
    return read_yaml(text, url) if Path(name).suffix in STRUCTURED else text


class _Inliner:
    """Inlines the file references of one catalog file, collecting issues instead of stopping at the first."""

    def __init__(self, catalog_file: Path, fetch: Fetch | None) -> None:
        self.file, self.fetch = catalog_file, fetch
        self.base = file_url(catalog_file)
        self.issues: list[CatalogIssue] = []

    def read(self, holder: dict[str, Any], key: str | int, path: tuple[str | int, ...]) -> None:
        """Replace ``holder[key]`` by the content of the file it names."""
        reference = holder[key]
        target = Path(self.file.parent, reference)
        try:
            holder[key] = _document(target.resolve().as_uri(), self.fetch)
        except FileNotFoundError:
            self.issues.append(
                CatalogIssue(str(self.file), format_path(path), f"file {reference!r} not found ({target})")
            )
        except (OSError, UnicodeDecodeError) as exc:
            self.issues.append(CatalogIssue(str(self.file), format_path(path), f"cannot read {reference!r}: {exc}"))
        except CatalogError as exc:
            self.issues.extend(exc.issues)

    def read_if_reference(self, holder: Any, key: str | int, path: tuple[str | int, ...]) -> None:
        if isinstance(holder, dict | list) and _has(holder, key) and is_file_reference(holder[key]):
            self.read(holder, key, path)

    def schema(self, holder: dict[str, Any], key: str, path: tuple[str | int, ...]) -> None:
        """Bundle a collection schema; one behind a URL stays as written until publishing (unless fetching)."""
        pointer = "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)
        try:
            holder[key] = bundle_schema(scope_url(self.file, pointer), holder[key], self.load_schema)
        except _Remote:
            return
        except LookupError as exc:
            self.issues.append(CatalogIssue(str(self.file), format_path(path), str(exc)))
        except FileNotFoundError as exc:
            self.issues.append(CatalogIssue(str(self.file), format_path(path), f"schema file not found: {exc}"))
        except CatalogError as exc:
            self.issues.extend(exc.issues)

    def load_schema(self, url: str) -> Any:
        return _document(url, self.fetch)

    def task_files(self, spec: dict[str, Any], path: tuple[str | int, ...]) -> None:
        connector = _get(spec, "endpoint", "connector")
        self.read_if_reference(connector, "config", (*path, "endpoint", "connector", "config"))
        for index, binding in enumerate(spec.get("bindings") or []):
            self.read_if_reference(binding, "resource", (*path, "bindings", index, "resource"))

    def collection_files(self, spec: dict[str, Any], path: tuple[str | int, ...]) -> None:
        for key in SCHEMA_FIELDS:
            if key in spec and spec[key] is not None:
                self.schema(spec, key, (*path, key))
        derive = spec.get("derive")
        if not isinstance(derive, dict):
            return
        using = derive.get("using") if isinstance(derive.get("using"), dict) else {}
        self.read_if_reference(using.get("connector"), "config", (*path, "derive", "using", "connector", "config"))
        migrations = _get(using, "sqlite", "migrations")
        for index in range(len(migrations) if isinstance(migrations, list) else 0):
            self.read_if_reference(migrations, index, (*path, "derive", "using", "sqlite", "migrations", index))
        for index, transform in enumerate(derive.get("transforms") or []):
            where = (*path, "derive", "transforms", index)
            self.read_if_reference(transform, "lambda", (*where, "lambda"))
            self.read_if_reference(_get(transform, "shuffle"), "lambda", (*where, "shuffle", "lambda"))


def _has(holder: dict[str, Any] | list[Any], key: str | int) -> bool:
    return key in holder if isinstance(holder, dict) else isinstance(key, int) and key < len(holder)


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _sections(data: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for section in ("captures", "materializations", "collections"):
        for name, spec in (data.get(section) or {}).items() if isinstance(data.get(section), dict) else ():
            if isinstance(spec, dict):
                yield section, name, spec


def inline_files(data: dict[str, Any], catalog_file: Path) -> list[CatalogIssue]:
    """Read every local file the specs of one catalog file name into them (``data`` is changed).

    Args:
        data: the parsed catalog file.
        catalog_file: its path; references are relative to its folder.

    Example:
        >>> inline_files({"captures": {}}, Path("flow.yaml"))
        []
    """
    inliner = _Inliner(catalog_file.resolve(), None)
    for section, name, spec in _sections(data):
        if section == "collections":
            inliner.collection_files(spec, (section, name))
        else:
            inliner.task_files(spec, (section, name))
    return inliner.issues


def inline_for_publication(spec: dict[str, Any], catalog_file: str, path: tuple[str, str], fetch: Fetch) -> None:
    """Read what loading left out of a collection spec: remote schemas and derivation modules (``spec`` is changed).

    Raises :class:`CatalogError` naming the file and path of a module or schema that cannot be read.
    """
    inliner = _Inliner(Path(catalog_file), fetch)
    for key in SCHEMA_FIELDS:
        value = spec.get(key)
        if value is not None and not (isinstance(value, dict) and "$id" in value):
            inliner.schema(spec, key, (*path, key))
    using = _get(spec, "derive", "using") or {}
    for language in MODULE_LANGUAGES:
        inliner.read_if_reference(using.get(language), "module", (*path, "derive", "using", language, "module"))
    if inliner.issues:
        raise CatalogError(inliner.issues)

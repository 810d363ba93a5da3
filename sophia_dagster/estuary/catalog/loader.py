"""Reading catalog files: YAML with duplicate keys refused, ``import``s followed, specs merged and named.

Every problem is reported as a :class:`~sophia_dagster.estuary.errors.CatalogError` listing the file, the path
inside it (``captures.acme/pg.bindings[2].target``) and the reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sophia_dagster.estuary.catalog.crosschecks import check_references
from sophia_dagster.estuary.catalog.models import SECTIONS, Catalog, CatalogFile
from sophia_dagster.estuary.errors import CatalogError, CatalogIssue, format_path

CATALOG_NAME = re.compile(r"^[\w.\-]+(/[\w.\-]+)+$")


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


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Load a catalog from one ``flow.yaml`` file or every ``*.flow.yaml`` in a directory, following imports."""
    root = Path(path)
    files = sorted(root.glob("*.flow.yaml")) if root.is_dir() else [root]
    if not files:
        raise CatalogError([CatalogIssue(str(root), "", "no *.flow.yaml files found")])
    loader = _Loader()
    for file in files:
        loader.load(file)
    return loader.catalog()

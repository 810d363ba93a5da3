"""Reading catalog files: YAML 1.2, ``import``s followed, files inlined, specs merged and named.

Every problem is reported as a :class:`~sophia_dagster.estuary.errors.CatalogError` listing the file, the path
inside it (``captures.acme/pg.bindings[2].target``) and the reason.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sophia_dagster.estuary.catalog.crosschecks import check_references
from sophia_dagster.estuary.catalog.models import SECTIONS, Catalog, CatalogFile, valid_name
from sophia_dagster.estuary.catalog.resources import inline_files
from sophia_dagster.estuary.catalog.unsupported import refuse_unsupported
from sophia_dagster.estuary.catalog.yaml12 import read_yaml
from sophia_dagster.estuary.errors import CatalogError, CatalogIssue, format_path

CatalogPath = str | os.PathLike[str]


def parse_catalog_text(text: str, file: str) -> tuple[CatalogFile, list[CatalogIssue]]:
    """Parse one catalog file: the specs it can take, and the issues of those it refuses or cannot complete.

    Files it names are read relative to ``file``; a syntax or schema error is a :class:`CatalogError`.
    """
    data = read_yaml(text, file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CatalogError([CatalogIssue(file, "", f"expected a mapping at the top, got {type(data).__name__}")])
    issues = refuse_unsupported(data, file)
    issues.extend(inline_files(data, Path(file)))
    try:
        return CatalogFile.model_validate(data), issues
    except ValidationError as exc:
        invalid = [CatalogIssue(file, format_path(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        raise CatalogError([*issues, *invalid]) from None
    except RecursionError:
        raise CatalogError([*issues, CatalogIssue(file, "", "document is nested too deeply")]) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError([CatalogIssue(str(path), "", f"cannot read file: {exc}")]) from None


class _Loader:
    """Loads files (following ``import``s), merges them and records where each spec came from."""

    def __init__(self) -> None:
        self.seen: set[Path] = set()
        self.specs: dict[str, dict[str, Any]] = {section: {} for section in (*SECTIONS.values(), "tests")}
        self.where: dict[str, tuple[str, str]] = {}
        self.issues: list[CatalogIssue] = []

    def load(self, path: Path) -> None:
        path = path.resolve()
        if path in self.seen:
            return
        self.seen.add(path)
        parsed, issues = parse_catalog_text(_read(path), str(path))
        self.issues.extend(issues)
        for index, target in enumerate(parsed.import_):
            imported = (path.parent / target).resolve()
            if "://" in target or not imported.is_file():
                self.issues.append(CatalogIssue(str(path), f"import[{index}]", f"no such local file: {target!r}"))
                continue
            self.load(imported)
        for section in (*SECTIONS.values(), "tests"):
            for name, model in getattr(parsed, section).items():
                self._add(str(path), section, name, model)

    def _add(self, file: str, section: str, name: str, model: BaseModel | list[Any]) -> None:
        path = f"{section}.{name}"
        if not valid_name(name):
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
            tests=self.specs["tests"],
            files={name: file for name, (file, _) in self.where.items()},
        )
        self.issues.extend(check_references(catalog))
        if self.issues:
            raise CatalogError(self.issues)
        return catalog


def load_catalog(path: CatalogPath | Sequence[CatalogPath]) -> Catalog:
    """Load a catalog from ``flow.yaml`` files, or every ``*.flow.yaml`` of directories, following imports.

    Args:
        path: a file or directory, or several of them; their specs form one catalog.

    Example:
        ``catalog = load_catalog("flows/")``
    """
    roots = [Path(p) for p in ([path] if isinstance(path, str | os.PathLike) else path)]
    loader = _Loader()
    for root in roots:
        files = sorted(root.glob("*.flow.yaml")) if root.is_dir() else [root]
        if not files:
            raise CatalogError([CatalogIssue(str(root), "", "no *.flow.yaml files found")])
        for file in files:
            loader.load(file)
    return loader.catalog()

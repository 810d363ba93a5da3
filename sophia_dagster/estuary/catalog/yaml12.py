"""Catalog YAML read as YAML 1.2, the way Estuary's own tools read it.

``12:30``, ``off``, ``yes`` and unquoted dates stay strings (YAML 1.1 readers turn them into 750, false, true
and dates); a repeated mapping key is an error naming the file, the path inside it and the line, never a
silent last-one-wins. ruamel.yaml's safe, pure-Python reader builds the node tree; values are constructed here
so every error knows where it is.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import BaseConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sophia_dagster.estuary.errors import CatalogError, CatalogIssue, PathPart, format_path

MERGE_TAG = "tag:yaml.org,2002:merge"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
MAX_DEPTH = 200


def _scalar(constructor: BaseConstructor, node: ScalarNode) -> Any:
    """A scalar as YAML 1.2's core schema types it: timestamps and ``1_000``-style numbers stay strings."""
    if node.tag == TIMESTAMP_TAG or (node.tag in NUMBER_TAGS and "_" in node.value):
        return node.value
    return constructor.construct_object(node, deep=True)


def _reader() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    return yaml


class _Builder:
    """Turns a composed node tree into Python values, naming the path of every problem."""

    def __init__(self, file: str, constructor: BaseConstructor) -> None:
        self.file, self.constructor = file, constructor

    def issue(self, path: tuple[PathPart, ...], node: Node, reason: str) -> CatalogError:
        line = node.start_mark.line + 1
        return CatalogError([CatalogIssue(self.file, format_path(path), f"{reason} (line {line})")])

    def build(self, node: Node, path: tuple[PathPart, ...] = ()) -> Any:
        if len(path) > MAX_DEPTH:
            raise self.issue(path, node, "document is nested too deeply")
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return _scalar(self.constructor, node)

    def mapping(self, node: MappingNode, path: tuple[PathPart, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in self.merged(node, path):
            key = self.build(key_node, path)
            if not isinstance(key, str | int | float | bool) or isinstance(key, bool):
                raise self.issue(path, key_node, f"mapping key {key!r} is not a string or number")
            key = str(key)
            if key in result:
                raise self.issue((*path, key), key_node, f"duplicate key {key!r}")
            result[key] = self.build(value_node, (*path, key))
        return result

    def merged(self, node: MappingNode, path: tuple[PathPart, ...]) -> list[tuple[Node, Node]]:
        """The mapping's pairs with ``<<`` merge keys expanded (explicit keys win over merged ones)."""
        pairs: list[tuple[Node, Node]] = []
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                pairs.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise self.issue(path, source, "a '<<' merge key needs a mapping")
                merged.extend(self.merged(source, path))
        explicit = {key.value for key, _ in pairs if isinstance(key, ScalarNode)}
        kept = {}
        for key_node, value_node in merged:
            if isinstance(key_node, ScalarNode) and key_node.value not in explicit:
                kept[key_node.value] = (key_node, value_node)
        return [*kept.values(), *pairs]


def read_yaml(text: str, file: str) -> Any:
    """Parse one YAML 1.2 document; a syntax error or repeated key is a :class:`CatalogError` naming the file.

    Args:
        text: the document.
        file: where it came from, for messages.

    Example:
        >>> read_yaml("at: 12:30\\nswitch: off\\n", "flow.yaml")
        {'at': '12:30', 'switch': 'off'}
    """
    reader = _reader()
    try:
        node = reader.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise CatalogError([CatalogIssue(file, "", f"not valid YAML: {exc.problem or exc.context}{where}")]) from None
    except (YAMLError, RecursionError) as exc:
        raise CatalogError([CatalogIssue(file, "", f"not valid YAML: {exc}")]) from None
    if node is None:
        return None
    try:
        return _Builder(file, reader.constructor).build(node)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1})" if mark else ""
        raise CatalogError([CatalogIssue(file, "", f"not valid YAML: {exc.problem}{where}")]) from None
    except RecursionError:
        raise CatalogError([CatalogIssue(file, "", "document is nested too deeply")]) from None

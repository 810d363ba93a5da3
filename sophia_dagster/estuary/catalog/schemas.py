"""JSON schemas of a catalog: files and URLs bundled the way ``flowctl`` bundles them, and ``$ref``s followed.

A collection's ``schema`` may be inline, a relative file (``rides.schema.yaml``, ``x.yaml#/$defs/y``) or a
URL, and inline schemas may ``$ref`` other files. :func:`bundle_schema` builds one self-contained schema:
the referenced documents are inlined under ``$defs`` (``__flowInline<N>``), each with its ``$id``, exactly as
Estuary's ``sources`` crate does before a publication. Remote (``http(s)``) documents are only fetched when a
fetcher is given, so loading a catalog makes no network call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

Fetch = Callable[[str], Any]
MAX_REF_DEPTH = 32
FLOW_REF = "flow://"
COMBINATORS = ("allOf", "anyOf", "oneOf")
BRANCHES = ("then", "else")


def unescape(token: str) -> str:
    """A JSON pointer token as the name it stands for (``~1`` is ``/``, ``~0`` is ``~``)."""
    return token.replace("~1", "/").replace("~0", "~")


def is_remote(url: str) -> bool:
    """Whether a schema URL needs the network (``http://``, ``https://``)."""
    return urlsplit(url).scheme in {"http", "https"}


def file_url(path: Path) -> str:
    """The ``file://`` URL of a local path (the ``$id`` flowctl gives a bundled schema file)."""
    return path.resolve().as_uri()


def scope_url(catalog_file: Path, pointer: str) -> str:
    """The ``$id`` of an inline schema: its catalog file with the JSON pointer as ``?ptr=`` (as flowctl writes it)."""
    return f"{file_url(catalog_file)}?ptr={pointer}"


def external_refs(schema: Any) -> Iterator[str]:
    """Every ``$ref`` in ``schema`` that names another document (not ``#...``, not ``flow://``)."""
    if isinstance(schema, Mapping):
        ref = schema.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#") and not ref.startswith(FLOW_REF):
            yield ref
        for key, value in schema.items():
            if key != "$ref":
                yield from external_refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from external_refs(item)


def with_id(url: str, schema: Any) -> dict[str, Any]:
    """``schema`` carrying ``$id`` (kept when it has one; a non-object schema is wrapped in ``allOf``)."""
    if isinstance(schema, Mapping):
        return {**schema} if "$id" in schema else {**schema, "$id": url}
    return {"$id": url, "allOf": [schema]}


def bundle_schema(scope: str, schema: Any, load: Fetch) -> dict[str, Any]:
    """A self-contained schema for ``schema`` declared at ``scope``; ``load(url)`` returns a document.

    Args:
        scope: the URL the schema is declared at (see :func:`scope_url`); relative references resolve against it.
        schema: the inline schema, or a string naming a schema document (with an optional ``#pointer``).
        load: returns the parsed document at an absolute URL, raising ``LookupError`` when it cannot.

    Example:
        >>> bundle_schema("file:///c/flow.yaml?ptr=/collections/a/schema", {"type": "object"}, lambda url: {})
        {'type': 'object', '$id': 'file:///c/flow.yaml?ptr=/collections/a/schema'}
    """
    documents: list[dict[str, Any]] = []
    if isinstance(schema, str):
        target = urljoin(scope, schema)
        root_refs = [target]
        if urldefrag(target).fragment:
            documents.append(with_id(scope, {"$ref": schema}))
    else:
        documents.append(with_id(scope, schema))
        root_refs = [urljoin(scope, ref) for ref in external_refs(schema)]
    seen: set[str] = set()
    pending = [urldefrag(url).url for url in root_refs]
    while pending:
        url = pending.pop(0)
        if url in seen:
            continue
        seen.add(url)
        document = load(url)
        documents.append(with_id(url, document))
        pending.extend(urldefrag(urljoin(url, ref)).url for ref in external_refs(document))
    root, *inlined = documents
    if inlined:
        root = {
            **root,
            "$defs": {**root.get("$defs", {}), **{f"__flowInline{i + 1}": d for i, d in enumerate(inlined)}},
        }
    return root


class SchemaIndex:
    """Resolves ``$ref``s inside a bundled schema, to read the properties a document has."""

    def __init__(self, bundle: Mapping[str, Any]) -> None:
        self.root = bundle
        base = str(bundle.get("$id", ""))
        self.by_id: dict[str, Mapping[str, Any]] = {urldefrag(base).url: bundle}
        for inlined in (bundle.get("$defs") or {}).values():
            if isinstance(inlined, Mapping) and isinstance(inlined.get("$id"), str):
                self.by_id[urldefrag(urljoin(base, inlined["$id"])).url] = inlined

    def resolve(self, ref: str, base: str) -> tuple[Any, str] | None:
        """The schema a ``$ref`` points at and its base URL; ``None`` when outside the bundle."""
        url, fragment = urldefrag(urljoin(base, ref))
        document = self.by_id.get(url)
        if document is None:
            return None
        if fragment and not fragment.startswith("/"):
            anchored = _anchor(document, unquote(fragment))
            return None if anchored is None else (anchored, url)
        node: Any = document
        for part in [p for p in unquote(fragment).split("/") if p]:
            key = unescape(part)
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return None
        return node, url

    def properties(self, schema: Any = None, base: str | None = None, depth: int = 0) -> dict[str, Any] | None:
        """Top-level properties ``schema`` (the bundle by default) may have, through ``$ref`` and sub-schemas.

        ``allOf``, ``anyOf``, ``oneOf``, ``then`` and ``else`` members all contribute. ``None`` when the
        schema says nothing about properties (any key is then possible).
        """
        schema = self.root if schema is None else schema
        base = str(self.root.get("$id", "")) if base is None else base
        if not isinstance(schema, Mapping) or depth > MAX_REF_DEPTH:
            return None
        if isinstance(schema.get("$id"), str):
            base = urljoin(base, schema["$id"])
        found: dict[str, Any] | None = None
        members = [m for key in COMBINATORS for m in schema.get(key) or []] + [schema.get(k) for k in BRANCHES]
        parts: list[tuple[Any, str]] = [(member, base) for member in members if isinstance(member, Mapping)]
        if isinstance(schema.get("$ref"), str) and (target := self.resolve(schema["$ref"], base)) is not None:
            parts.insert(0, target)
        for part, part_base in parts:
            more = self.properties(part, part_base, depth + 1)
            if more is not None:
                found = {**(found or {}), **more}
        if isinstance(schema.get("properties"), Mapping):
            own = {name: self.deref(prop, base) for name, prop in schema["properties"].items()}
            found = {**(found or {}), **own}
        return found

    def deref(self, schema: Any, base: str, depth: int = 0) -> Any:
        """``schema`` with a ``$ref`` that is all it says followed (for a property's type and format)."""
        if isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and depth < MAX_REF_DEPTH:
            target = self.resolve(schema["$ref"], base)
            if target is not None:
                return {
                    **self.deref(target[0], target[1], depth + 1),
                    **{k: v for k, v in schema.items() if k != "$ref"},
                }
        return schema


def _anchor(schema: Any, name: str) -> Any:
    """The sub-schema declaring ``$anchor: name`` (``#name`` references), searched depth-first."""
    if isinstance(schema, Mapping):
        if schema.get("$anchor") == name:
            return schema
        children: Any = schema.values()
    elif isinstance(schema, list):
        children = schema
    else:
        return None
    for child in children:
        found = _anchor(child, name)
        if found is not None:
            return found
    return None

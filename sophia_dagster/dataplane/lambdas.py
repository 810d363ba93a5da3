"""SQLite lambdas the way Estuary's ``derive-sqlite`` runs them: document fields in as ``$parameters``, rows out as
documents.

- A lambda block is split into statements at each ``;`` that completes one; each statement is a lambda, run in
  order for every source document.
- ``$field`` names a projection of the source collection: ``$id``, ``$nested$field`` (``nested/field``),
  ``$_meta$op``, ``$flow_document`` (the whole document), or ``$p::(any/field name)``. ``_`` may stand for a space
  or ``-``. An unknown name is refused when the derivation is published or run, with the closest known one.
- Binding: null, booleans (as 1/0), integers within int64 and floats bind as SQLite values; objects, arrays and
  ``$flow_document`` bind as their compact JSON text with every digit; a string whose schema says
  ``format: integer`` / ``format: number`` binds as int64 / double, ``contentEncoding: base64`` as a blob. A
  field the document lacks binds NULL. An integer beyond int64 binds as a double (as Estuary's runtime does).
- Each output row becomes a document: every column a top-level property (a column named like a parameter, e.g.
  ``$id``, takes the parameter's field name). Text that starts and ends with ``{}``/``[]`` and parses as JSON
  becomes that JSON, read with every digit (so ``JSON($flow_document)`` passes numbers through exactly); blobs
  become base64; a NaN or infinite double becomes a string. A single column whose name starts with ``json``
  (``SELECT JSON($flow_document)``, ``SELECT json_object(...)``) is the whole output document.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import math
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sophia_dagster.dataplane.values import RawJSON, decode, encode

ROOT_FIELD = "flow_document"
EXPLICIT = re.compile(r"^p::\((.*)\)$", re.DOTALL)
INT64 = range(-(2**63), 2**63)


class LambdaError(ValueError):
    """A lambda block or parameter that cannot run (the message says which and why)."""


@dataclass(frozen=True)
class Field:
    """A projection of a source collection: its field name, and how strings at it bind (schema ``format``,
    ``contentEncoding``)."""

    name: str
    format: str | None = None
    base64: bool = False

    @property
    def pointer(self) -> tuple[str, ...]:
        return () if self.name == ROOT_FIELD else tuple(self.name.split("/"))

    @property
    def encoding(self) -> str:
        """How a lambda names this field (``$nested$field``, or ``$p::(odd name)``)."""
        simple = all(c.isalnum() or c.isspace() or c in "_-/" for c in self.name)
        if not simple:
            return f"$p::({''.join('_' if c.isspace() else c for c in self.name)})"
        return "$" + "".join("_" if c.isspace() or c == "-" else "$" if c == "/" else c for c in self.name)


def split_block(block: str) -> list[str]:
    """The statements of a SQL block, each ending at the ``;`` that completes it (semicolons in strings and comments
    do not split); a block whose tail is not a complete statement is refused."""
    statements, start, pivot = [], 0, 0
    while True:
        end = block.find(";", pivot)
        if end < 0:
            tail = block[start:]
            if tail.strip():
                raise LambdaError(f"SQL block has trailing content that is not a statement ending with ';': {tail!r}")
            return statements
        pivot = end + 1
        candidate = block[start:pivot]
        if sqlite3.complete_statement(candidate):
            if candidate.strip() != ";":
                statements.append(candidate)
            start = pivot


def resolve(name: str, fields: Mapping[str, Field]) -> Field:
    """The field a parameter name (without its leading ``$``) stands for, as Estuary resolves it."""
    explicit = EXPLICIT.match(name)
    wanted = explicit.group(1) if explicit else name.replace("$", "/")
    if wanted in fields:
        return fields[wanted]
    for field in fields.values():
        if len(field.name) == len(wanted) and all(
            w == f or (w == "_" and (f.isspace() or (f == "-" and not explicit)))
            for w, f in zip(wanted, field.name, strict=True)
        ):
            return field
    known = {field.encoding: field for field in fields.values()}
    closest = difflib.get_close_matches("$" + name, list(known), n=1, cutoff=0.0)
    hint = f": did you mean {closest[0]} ?" if closest else ""
    raise LambdaError(f"parameter ${name} not found{hint}")


def extract(document: Any, pointer: tuple[str, ...]) -> Any:
    """The value at ``pointer`` (None when the document lacks it)."""
    value = document
    for part in pointer:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def bind(value: Any, field: Field) -> Any:
    """A document value as the SQLite value its parameter binds."""
    if isinstance(value, RawJSON):
        parsed = decode(value)
        return float(parsed) if isinstance(parsed, RawJSON) else bind(parsed, field)
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if value in INT64 else float(value)
    if isinstance(value, str):
        return _bind_string(value, field)
    return encode(value)


def _bind_string(value: str, field: Field) -> Any:
    if field.format == "integer":
        try:
            number = int(value)
            if number in INT64:
                return number
        except ValueError:
            pass
    if field.format == "number":
        try:
            return float(value)
        except ValueError:
            pass
    if field.base64:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    return value


def output_value(value: Any) -> Any:
    """A SQLite result value as a document value (JSON-looking text parsed exactly)."""
    if isinstance(value, str):
        if value[:1] + value[-1:] in ("{}", "[]"):
            try:
                return decode(value)
            except ValueError:
                return value
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return {"nan": "NaN", "inf": "inf", "-inf": "-inf"}[str(value)]
    return value


class _Parameters(dict):
    """The parameters of one invocation, bound lazily from the document by name (``fields`` maps each name the
    statement uses to its field)."""

    def __init__(self, document: Any, fields: Mapping[str, Field]) -> None:
        super().__init__()
        self.document = document
        self.fields = fields

    def __missing__(self, name: str) -> Any:
        field = self.fields[name]
        if field.name == ROOT_FIELD:
            return encode(self.document)
        return bind(extract(self.document, field.pointer), field)


class _Resolver(dict):
    """Records the field of every parameter name a statement uses, while SQLite compiles it."""

    def __init__(self, fields: Mapping[str, Field]) -> None:
        super().__init__()
        self.fields = fields
        self.used: dict[str, Field] = {}

    def __missing__(self, name: str) -> None:
        self.used[name] = resolve(name, self.fields)


class Lambda:
    """One statement of a lambda block, checked against the database and the source's fields when built."""

    def __init__(self, conn: sqlite3.Connection, statement: str, fields: Mapping[str, Field]) -> None:
        self.conn = conn
        self.statement = statement
        resolver = _Resolver(fields)
        try:
            conn.execute("EXPLAIN " + statement, resolver)
        except sqlite3.Error as exc:
            raise LambdaError(f"statement {statement.strip()!r} is invalid: {exc}") from None
        self.fields = resolver.used
        self.outputs = {"$" + name: field.name for name, field in resolver.used.items()}

    def invoke(self, document: Any) -> list[dict[str, Any]]:
        """The documents the statement outputs for ``document`` (raises ``sqlite3.Error`` when it fails)."""
        cursor = self.conn.execute(self.statement, _Parameters(document, self.fields))
        if cursor.description is None:
            return []
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
        if len(names) == 1 and names[0].lower().startswith("json"):
            return [_whole(output_value(row[0]), names[0]) for row in rows]
        fields = [self.outputs.get(name, name) for name in names]
        return [{field: output_value(value) for field, value in zip(fields, row, strict=True)} for row in rows]


def _whole(value: Any, column: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise sqlite3.DataError(f"column {column} must be a JSON object to be the output document, got {value!r}")
    return value

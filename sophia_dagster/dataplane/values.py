"""PostgreSQL text values -> JSON document values, by type OID, the way Estuary's source-postgres writes them.

Both paths share this: pgoutput tuples (text form) and the backfill's ``COPY ... TO STDOUT`` (text form).
The session must use ``TimeZone = 'UTC'`` and ``DateStyle = 'ISO'`` so timestamps arrive as ``... +00``.
Numeric stays an exact decimal string (Estuary: ``type: string, format: number``); timestamps become
RFC 3339 in UTC; json/jsonb are parsed; bytea is base64; arrays become (nested) JSON lists.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Converter = Callable[[str], Any]

INT_OIDS = {20, 21, 23, 26, 28}
FLOAT_OIDS = {700, 701}
BOOL_OID, BYTEA_OID, JSON_OIDS = 16, 17, {114, 3802}
NUMERIC_OID, DATE_OID, TIMESTAMP_OID, TIMESTAMPTZ_OID, UUID_OID = 1700, 1082, 1114, 1184, 2950

ARRAY_ELEMENTS = {
    1000: 16,
    1001: 17,
    1005: 21,
    1007: 23,
    1009: 25,
    1014: 1042,
    1015: 1043,
    1016: 20,
    1021: 700,
    1022: 701,
    1028: 26,
    1115: 1114,
    1182: 1082,
    1185: 1184,
    1231: 1700,
    199: 114,
    3807: 3802,
    2951: 2950,
}
"""Array type OID -> element type OID for the built-in types (others are looked up in ``pg_type``)."""


def _float(text: str) -> float | str:
    value = float(text)
    return text if value != value or value in (float("inf"), float("-inf")) else value


def _timestamptz(text: str) -> str:
    if text.endswith("+00"):
        return text[:-3].replace(" ", "T", 1) + "Z"
    if text in ("infinity", "-infinity"):
        return text
    return datetime.fromisoformat(text).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _timestamp(text: str) -> str:
    return text if text in ("infinity", "-infinity") else text.replace(" ", "T", 1) + "Z"


def _bytea(text: str) -> str:
    return base64.b64encode(bytes.fromhex(text[2:])).decode("ascii")


SCALARS: dict[int, Converter] = {
    **{oid: int for oid in INT_OIDS},
    **{oid: _float for oid in FLOAT_OIDS},
    **{oid: json.loads for oid in JSON_OIDS},
    BOOL_OID: lambda text: text == "t",
    BYTEA_OID: _bytea,
    TIMESTAMPTZ_OID: _timestamptz,
    TIMESTAMP_OID: _timestamp,
}


def converter(type_oid: int, element_oid: int | None = None) -> Converter:
    """The converter for values of ``type_oid``; pass ``element_oid`` for arrays of non-builtin types."""
    if type_oid in SCALARS:
        return SCALARS[type_oid]
    element = ARRAY_ELEMENTS.get(type_oid, element_oid)
    if element:
        convert_element = converter(element)
        return lambda text: parse_array(text, convert_element)
    return str


def parse_array(text: str, convert: Converter) -> list[Any]:
    """Parse a PostgreSQL array literal (``{1,NULL,"a b"}``, nested, optional ``[l:u]=`` bounds)."""
    if text.startswith("["):
        text = text[text.index("=") + 1 :]
    value, end = _parse_array_at(text, 0, convert)
    if end != len(text):
        raise ValueError(f"trailing characters in array literal {text!r}")
    return value


def _parse_array_at(text: str, pos: int, convert: Converter) -> tuple[list[Any], int]:
    if text[pos] != "{":
        raise ValueError(f"array literal {text!r} has no '{{' at {pos}")
    items: list[Any] = []
    pos += 1
    while text[pos] != "}":
        if text[pos] == "{":
            item, pos = _parse_array_at(text, pos, convert)
        elif text[pos] == '"':
            item, pos = _quoted(text, pos)
            item = convert(item)
        else:
            end = pos
            while text[end] not in ",}":
                end += 1
            raw = text[pos:end].strip()
            item, pos = (None if raw == "NULL" else convert(raw)), end
        items.append(item)
        if text[pos] == ",":
            pos += 1
    return items, pos + 1


def _quoted(text: str, pos: int) -> tuple[str, int]:
    chars: list[str] = []
    pos += 1
    while text[pos] != '"':
        if text[pos] == "\\":
            pos += 1
        chars.append(text[pos])
        pos += 1
    return "".join(chars), pos + 1

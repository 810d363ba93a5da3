"""PostgreSQL text values -> exact JSON document values, by type, the way Estuary's source-postgres writes them.

Both paths share this: pgoutput tuples (text form) and the backfill's ``COPY ... TO STDOUT`` (text form).
The session must use ``TimeZone = 'UTC'``, ``DateStyle = 'ISO'`` and ``extra_float_digits = 3``.

- numeric stays an exact decimal string, ``NaN``/``Infinity``/``-Infinity`` included (Estuary:
  ``type: string, format: number``);
- floats keep PostgreSQL's shortest exact text as a JSON number (``-0`` stays negative); NaN and the
  infinities become the strings ``NaN``, ``Infinity``, ``-Infinity`` (as Estuary does);
- json/jsonb keep their text verbatim (:class:`RawJSON`), so a number keeps every digit;
- timestamps become RFC 3339 in UTC; years before 1 AD use ISO 8601's astronomical year (``44 BC`` is
  ``-0043``) and ``infinity`` stays ``infinity``, where Estuary substitutes sentinels that change the value;
- bytea is base64; arrays become nested JSON lists with every dimension kept;
- every other type (inet, cidr, money, enum, interval, timetz, uuid, ...) is its PostgreSQL text output.
Domains are read as their base type.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

Converter = Callable[[str], Any]

INT_OIDS = {20, 21, 23, 26, 28}
FLOAT_OIDS = {700, 701}
BOOL_OID, BYTEA_OID, JSON_OIDS = 16, 17, {114, 3802}
NUMERIC_OID, DATE_OID, TIMESTAMP_OID, TIMESTAMPTZ_OID, UUID_OID = 1700, 1082, 1114, 1184, 2950
TEXT_OUTPUT_OIDS = {18, 19, 25, 1042, 1043, 2950, 869, 650, 790, 1186, 1266, 1083, 829, 774}
"""Types whose document value is their text output (char, name, text, bpchar, varchar, uuid, inet, cidr,
money, interval, timetz, time, macaddr, macaddr8)."""

FLOAT_SPECIALS = {"NaN", "Infinity", "-Infinity"}
INFINITIES = {"infinity", "-infinity"}


class RawJSON(str):
    """JSON text written into documents verbatim: numbers keep every digit, nothing is re-parsed."""

    __slots__ = ()


@dataclass(frozen=True)
class PgType:
    """A column type as the converters see it: the base type (domains resolved) and, for arrays, the element's."""

    oid: int
    element: int = 0
    enum: bool = False


_STRING = json.JSONEncoder(ensure_ascii=False).encode


def encode(value: Any) -> str:
    """Compact JSON of a document value; :class:`RawJSON` parts are written as they are."""
    if isinstance(value, RawJSON):
        return str(value)
    if isinstance(value, str):
        return _STRING(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return json.dumps(value, allow_nan=False)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_STRING(str(k))}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} into a document")


def decode(text: str) -> Any:
    """Parse a stored document keeping every number exact (fractions and exponents as :class:`RawJSON`)."""
    return json.loads(text, parse_float=RawJSON)


def column_text(value: Any) -> str | None:
    """The text a warehouse column is loaded from for one document value (NULL for null)."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    return encode(value)


def _float(text: str) -> str:
    return text if text in FLOAT_SPECIALS else RawJSON(text)


def _astronomical(text: str) -> str:
    """``'0044-03-15 12:00:00+00 BC'`` -> ``'-0043-03-15 12:00:00+00'`` (ISO 8601 years; 1 BC is year 0)."""
    if not text.endswith(" BC"):
        return text
    year, rest = text[:-3].split("-", 1)
    astronomical = int(year) - 1
    return ("-" if astronomical else "") + f"{astronomical:04d}-{rest}"


def _timestamptz(text: str) -> str:
    if text in INFINITIES:
        return text
    text = _astronomical(text).replace(" ", "T", 1)
    return text[:-3] + "Z" if text.endswith("+00") else text


def _timestamp(text: str) -> str:
    return text if text in INFINITIES else _astronomical(text).replace(" ", "T", 1) + "Z"


def _date(text: str) -> str:
    return text if text in INFINITIES else _astronomical(text)


def _bytea(text: str) -> str:
    return base64.b64encode(bytes.fromhex(text[2:])).decode("ascii")


SCALARS: dict[int, Converter] = {
    **{oid: int for oid in INT_OIDS},
    **{oid: _float for oid in FLOAT_OIDS},
    **{oid: RawJSON for oid in JSON_OIDS},
    BOOL_OID: lambda text: text == "t",
    BYTEA_OID: _bytea,
    TIMESTAMPTZ_OID: _timestamptz,
    TIMESTAMP_OID: _timestamp,
    DATE_OID: _date,
}


def converter(pg_type: PgType) -> Converter:
    """The converter of a column's text values."""
    if pg_type.element:
        convert_element = converter(PgType(pg_type.element))
        return lambda text: parse_array(text, convert_element)
    return SCALARS.get(pg_type.oid, str)


def resolve_types(conn: psycopg.Connection, oids: Iterable[int]) -> dict[int, PgType]:
    """Each type OID as a :class:`PgType`: domains (also of array elements) resolved to their base type."""
    wanted = set(oids)
    info: dict[int, tuple[str, int, int, str]] = {}
    pending = set(wanted)
    while pending:
        for oid, *row in conn.execute(
            "SELECT oid::int, typtype::text, typbasetype::int, typelem::int, typcategory::text FROM pg_type"
            " WHERE oid = ANY(%s)",
            (list(pending),),
        ):
            info[oid] = tuple(row)
        pending = {
            ref
            for kind, base, element, category in info.values()
            for ref in (base if kind == "d" else 0, element if category == "A" else 0)
            if ref and ref not in info
        }

    def base(oid: int) -> int:
        while info[oid][0] == "d":
            oid = info[oid][1]
        return oid

    resolved = {}
    for oid in wanted & info.keys():
        scalar = base(oid)
        element = base(info[scalar][2]) if info[scalar][3] == "A" else 0
        resolved[oid] = PgType(scalar, element, info[element or scalar][0] == "e")
    return resolved


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

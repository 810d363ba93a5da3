"""Hard cases through the embedded data plane, one table each: backfill, then streamed inserts, updates, key
updates, delete + re-insert in one transaction and TRUNCATE; the warehouse is compared with the source by
count and a per-row hash over every column, and over every field of ``flow_document``.

The comparison reads the source's own text output (``COPY``) and the warehouse's ``::VARCHAR`` text and
canonicalizes both here, independently of the data plane's converters."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from decimal import Decimal
from typing import Any

import pytest

from sophia_dagster.dataplane.errors import DataPlaneError
from tests.local_dataplane.conftest import Env, write_catalog

ANY = {"type": "object", "properties": {"id": {"type": "integer"}}}
CODED = {"type": "object", "properties": {"code": {"type": "string"}}}
BIG_JSON = '{"big": 123456789012345678901234567890.123456789, "pi": 3.141592653589793238462643383279}'

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_amount AS numeric(20, 4) CHECK (VALUE >= 0);
CREATE DOMAIN short_code AS text CHECK (length(VALUE) < 10);
CREATE TABLE t_numeric (id int PRIMARY KEY, fixed numeric(38, 18), whole numeric(38, 0), free numeric);
CREATE TABLE t_names (id int PRIMARY KEY, "select" text, "group" int, r int, "Value" text, value text,
    "my col" text, "Ünï" text);
CREATE TABLE t_json (id int PRIMARY KEY, doc jsonb, raw json, docs jsonb[]);
CREATE TABLE t_toast (id int PRIMARY KEY, n int, big text);
CREATE TABLE t_keyless (code text NOT NULL UNIQUE, body text);
ALTER TABLE t_keyless REPLICA IDENTITY FULL;
CREATE TABLE t_types (id int PRIMARY KEY, cash money, addr inet, net cidr, feeling mood, amount positive_amount,
    code short_code, span interval, at_tz timetz, blob bytea, r real, d double precision, ints int[],
    words text[], feelings mood[], grid int[][], amounts numeric[][], at_bc timestamptz, at_plain timestamp,
    day date)
"""

TYPES_COLUMNS = (
    "cash, addr, net, feeling, amount, code, span, at_tz, blob, r, d, ints, words, feelings, grid, amounts, at_bc,"
    " at_plain, day"
)
TYPES_ROWS = [
    (
        "'$1,234.56', '192.168.0.1', '10.0.0.0/8', 'happy', 12.5, 'abc', '1 year 2 mons 3 days 04:05:06.789', "
        "'12:34:56.789+05:30', '\\x00ff10', 'Infinity', '-0', '{1,NULL,3}', '{\"a b\",NULL,\"NULL\"}', "
        "'{sad,NULL}', '{{1,2},{3,NULL}}', '{{1.50,NaN},{-0.0,NULL}}', '0044-03-15 12:00:00+00 BC', "
        "'2024-02-29 23:59:59.999999', '0001-01-01 BC'"
    ),
    (
        "'-$0.01', '::1', '2001:db8::/32', 'sad', 0, '', '-1 days', '00:00:00+00', '\\x', 'NaN', '-Infinity', '{}', "
        "'{}', '{}', '{{7}}', '{{1e-20}}', 'infinity', '-infinity', 'infinity'"
    ),
    (
        "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-0', '1e+300', NULL, NULL, NULL, NULL, NULL, "
        "'1999-12-31 23:59:59.5+00', '0010-06-01 00:00:00 BC', '2000-02-29'"
    ),
]

NUMERIC_ROWS = [
    "'NaN', 9223372036854775809, 'Infinity'",
    "12345678901234567890.123456789012345678, 99999999999999999999999999999999999999, '-Infinity'",
    "-0.000000000000000001, -9223372036854775809, 123456789012345678901234567890.123456789012345678901234567890",
    "NULL, 0, 'NaN'",
]


def _setup(env: Env) -> None:
    with env.source() as conn:
        conn.execute(SCHEMA)
        for i, values in enumerate(NUMERIC_ROWS, 1):
            conn.execute(f"INSERT INTO t_numeric VALUES ({i}, {values})")
        conn.execute(
            "INSERT INTO t_names VALUES (1, 'from', 2, 3, 'Upper', 'lower', 'spaced', 'ünïcødé'),"
            " (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO t_json VALUES (1, %s, %s, ARRAY[%s::jsonb, NULL]), (2, 'null', 'null', '{}'),"
            " (3, '[1.0, -0.0, 1e400]', %s, NULL)",
            (BIG_JSON, BIG_JSON, BIG_JSON, '{\n  "pretty": [1.10,\n 2]\n}'),
        )
        conn.execute(
            "INSERT INTO t_toast SELECT g, 0, (SELECT string_agg(md5(g::text || s::text), '')"
            " FROM generate_series(1, 400) s) FROM generate_series(1, 3) g"
        )
        conn.execute("INSERT INTO t_keyless VALUES ('a', 'one'), ('b', 'two')")
        for i, values in enumerate(TYPES_ROWS, 1):
            conn.execute(f"INSERT INTO t_types (id, {TYPES_COLUMNS}) VALUES ({i}, {values})")


def _stream(env: Env) -> None:
    with env.source() as conn:
        for i, values in enumerate(TYPES_ROWS, 101):
            conn.execute(f"INSERT INTO t_types (id, {TYPES_COLUMNS}) VALUES ({i}, {values})")
        for i, values in enumerate(NUMERIC_ROWS, 101):
            conn.execute(f"INSERT INTO t_numeric VALUES ({i}, {values})")
        conn.execute("UPDATE t_numeric SET free = free + 1 WHERE id = 3")
        conn.execute("UPDATE t_names SET \"select\" = 'where', r = r + 1, value = 'changed' WHERE id = 1")
        conn.execute("INSERT INTO t_names VALUES (3, 'x', 1, 1, 'y', 'z', 'w', 'v')")
        conn.execute("INSERT INTO t_json SELECT id + 100, doc, raw, docs FROM t_json")
        conn.execute("UPDATE t_json SET doc = jsonb_set(doc, '{extra}', '0.1000000000000000000001') WHERE id = 1")
        conn.execute("UPDATE t_toast SET id = id + 100 WHERE id <= 2")
        conn.execute("UPDATE t_toast SET n = n + 1")
        with conn.transaction():
            conn.execute("UPDATE t_toast SET id = 200 WHERE id = 3")
            conn.execute("UPDATE t_toast SET id = 300 WHERE id = 200")
        conn.execute("UPDATE t_keyless SET body = 'changed' WHERE code = 'a'")
        with conn.transaction():
            conn.execute("DELETE FROM t_keyless WHERE code = 'b'")
            conn.execute("INSERT INTO t_keyless VALUES ('b', 'two again'), ('c', 'three')")
        with conn.transaction():
            conn.execute("DELETE FROM t_types WHERE id = 2")
            conn.execute(f"INSERT INTO t_types (id, {TYPES_COLUMNS}) VALUES (2, {TYPES_ROWS[0]})")
        conn.execute("TRUNCATE t_numeric")
        conn.execute(f"INSERT INTO t_numeric VALUES (7, {NUMERIC_ROWS[2]}), (8, {NUMERIC_ROWS[0]})")


# canonical forms -------------------------------------------------------------------------------------------
def _instant(text: str) -> str:
    """PostgreSQL, DuckDB and RFC 3339 spellings of a date/time as one form (astronomical year, ' ', '+00')."""
    if "infinity" in text:
        return text
    bc = "BC" in text
    text = text.replace(" (BC)", "").replace(" BC", "").replace("T", " ").replace("Z", "+00")
    year, rest = re.match(r"^(-?\d+)(-.*)$", text).groups()
    astronomical = 1 - int(year) if bc else int(year)
    return f"{astronomical}{rest}".removesuffix("+00").removesuffix(".000000")


def _leaf(value: Any) -> Any:
    """JSON leaves as text, so a number and its exact decimal string compare equal."""
    if isinstance(value, list):
        return [_leaf(v) for v in value]
    if isinstance(value, dict):
        return {k: _leaf(v) for k, v in value.items()}
    return value if value is None or isinstance(value, bool) else str(value)


def _json(text: str) -> Any:
    return _leaf(json.loads(text, parse_float=str, parse_int=str, parse_constant=str))


def _float(text: str) -> str:
    return repr(float(text))


def _pg_array(text: str) -> Any:
    """A PostgreSQL array literal as nested lists of strings (test-side parser, quoted elements unescaped)."""
    tokens = re.findall(r'\{|\}|"(?:[^"\\]|\\.)*"|[^,{}]+', text)
    stack: list[list] = [[]]
    for token in tokens:
        if token == "{":
            stack.append([])
        elif token == "}":
            done = stack.pop()
            stack[-1].append(done)
        elif token.startswith('"'):
            stack[-1].append(re.sub(r"\\(.)", r"\1", token[1:-1]))
        else:
            stack[-1].append(None if token == "NULL" else token)
    return stack[0][0]


def _number_leaves(value: Any) -> Any:
    """Array leaves that are numbers, as exact canonical decimals (``1.50`` and ``"1.50"`` alike)."""
    if isinstance(value, list):
        return [_number_leaves(v) for v in value]
    try:
        return str(Decimal(value))
    except (ArithmeticError, TypeError, ValueError):
        return value


CANONICAL = {
    "int": int,
    "numeric": str,
    "float": _float,
    "bool": lambda t: t in ("t", "true", True),
    "instant": _instant,
    "json": _json,
    "array": _number_leaves,
    "bytea": lambda t: t,
    "text": lambda t: t,
}


def _source_kinds(env: Env, table: str) -> dict[str, str]:
    kinds = {}
    with env.source() as conn:
        for name, typ, category in conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory FROM pg_attribute a"
            " JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = %s::regclass AND a.attnum > 0"
            " AND NOT a.attisdropped ORDER BY a.attnum",
            (table,),
        ):
            kinds[name] = (
                "jsonarray"
                if typ in ("json[]", "jsonb[]")
                else "array"
                if category == "A"
                else "int"
                if typ in ("integer", "bigint", "smallint")
                else "float"
                if typ in ("real", "double precision")
                else "bool"
                if typ == "boolean"
                else "json"
                if typ in ("json", "jsonb")
                else "bytea"
                if typ == "bytea"
                else "instant"
                if typ.startswith(("timestamp", "date"))
                else "numeric"
                if typ.startswith("numeric") or typ == "positive_amount"
                else "text"
            )
    return kinds


def _source_rows(env: Env, table: str, kinds: dict[str, str]) -> list[dict[str, Any]]:
    columns = list(kinds)
    with env.source() as conn, conn.cursor() as cursor:
        cursor.execute("SET TimeZone = 'UTC'")
        cursor.execute("SET DateStyle = 'ISO'")
        cursor.execute("SET extra_float_digits = 3")
        with cursor.copy(f"COPY {table} TO STDOUT") as copy:
            rows = [dict(zip(columns, row, strict=True)) for row in copy.rows()]
    out = []
    for row in rows:
        canonical = {}
        for name, text in row.items():
            kind = kinds[name]
            if text is None:
                canonical[name] = None
            elif kind == "array":
                canonical[name] = _number_leaves(_pg_array(text))
            elif kind == "jsonarray":
                canonical[name] = [None if e is None else _json(e) for e in _pg_array(text)]
            elif kind == "bytea":
                canonical[name] = base64.b64encode(bytes.fromhex(text[2:])).decode()
            elif kind == "json":
                parsed = _json(text)
                canonical[name] = None if parsed is None else parsed
            else:
                canonical[name] = CANONICAL[kind](text)
        out.append(canonical)
    return out


def _warehouse_rows(env: Env, table: str, kinds: dict[str, str], excluded: set[str]) -> tuple[list, list]:
    """Live rows as (columns, flow_document fields), canonicalized."""
    columns = [c for c in kinds if c not in excluded]
    quoted = ", ".join(f'"{_snowflake_name(c)}"::VARCHAR' for c in columns)
    with env.warehouse() as conn:
        cursor = conn.cursor()
        cursor.execute(f'SELECT {quoted}, "FLOW_DOCUMENT"::VARCHAR FROM {table} WHERE "_meta/op" <> \'d\'')
        fetched = cursor.fetchall()
    by_column, by_document = [], []
    for row in fetched:
        document = json.loads(row[-1], parse_float=str, parse_int=str, parse_constant=str)
        document.pop("_meta")
        values, fields = {}, {}
        for name, text in zip(columns, row[:-1], strict=True):
            values[name] = None if text is None else _canonical_from_warehouse(kinds[name], text)
        for name, value in document.items():
            fields[name] = None if value is None else _canonical_from_document(kinds[name], value)
        by_column.append(values)
        by_document.append(fields)
    return by_column, by_document


def _snowflake_name(field: str) -> str:
    """Estuary's rule, restated: plain names that are not reserved words are stored upper-cased."""
    return field.upper() if re.fullmatch(r"[^\W\d]\w*", field) and field not in ("select", "group") else field


def _canonical_from_warehouse(kind: str, text: str) -> Any:
    if kind in ("json", "array", "jsonarray"):
        parsed = _json(text)
        return _number_leaves(parsed) if kind == "array" else parsed
    return CANONICAL[kind](text)


def _canonical_from_document(kind: str, value: Any) -> Any:
    if kind in ("json", "jsonarray"):
        return _leaf(value)
    if kind == "array":
        return _number_leaves(_leaf(value))
    return CANONICAL[kind](value if kind == "bool" else str(value))


def _digest(rows: list[dict[str, Any]]) -> tuple[int, str]:
    lines = sorted(json.dumps(row, sort_keys=True) for row in rows)
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _assert_table(env: Env, table: str, excluded: set[str] = frozenset()) -> None:
    kinds = _source_kinds(env, table)
    source = _source_rows(env, table, kinds)
    columns, documents = _warehouse_rows(env, table, kinds, excluded)
    expected_columns = [{k: v for k, v in row.items() if k not in excluded} for row in source]
    assert _digest(columns) == _digest(expected_columns), (
        f"{table} columns differ:\n"
        + "\n".join(sorted(json.dumps(r, sort_keys=True) for r in columns))
        + "\n--- source ---\n"
        + "\n".join(sorted(json.dumps(r, sort_keys=True) for r in expected_columns))
    )
    assert _digest(documents) == _digest(source), f"{table} flow_document differs:\n{documents}\n{source}"


TABLES = ("t_numeric", "t_names", "t_json", "t_toast", "t_keyless", "t_types")


def test_every_hard_case_arrives_exactly_through_backfill_streaming_key_updates_and_truncate(env: Env) -> None:
    _setup(env)
    write_catalog(
        env.catalog_dir,
        extra_tables={**dict.fromkeys(TABLES, ANY), "t_keyless": CODED},
        keys={"t_keyless": ["/code"]},
        exclude={"t_names": ["Value"]},
        demo_tables=False,
    )
    plane = env.plane()
    plane.publish(["sophia/postgres-cdc"])
    first = plane.run("sophia/postgres-cdc")
    assert first.backfilled["sophia/postgres-cdc/t_numeric"] == 4
    for table in TABLES:
        _assert_table(env, table, {"Value"} if table == "t_names" else set())

    _stream(env)
    plane.run("sophia/postgres-cdc")
    for table in TABLES:
        _assert_table(env, table, {"Value"} if table == "t_names" else set())

    with env.warehouse() as conn:
        cursor = conn.cursor()
        cursor.execute('SELECT "FLOW_DOCUMENT"::VARCHAR FROM t_json WHERE "ID" IN (1, 101) ORDER BY "ID"')
        documents = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            'SELECT "FLOW_DOCUMENT"::VARCHAR FROM t_types WHERE "ID" IN (1, 101, 2) AND "_meta/op" <> \'d\' ORDER BY "ID"'
        )
        backfilled, reinserted, streamed = (
            json.loads(row[0], parse_float=str, parse_int=str) for row in cursor.fetchall()
        )
    assert all(
        "123456789012345678901234567890.123456789" in d and "3.141592653589793238462643383279" in d for d in documents
    )
    assert '"Value":"Upper"' not in documents[0]
    for doc in (backfilled, reinserted, streamed):
        doc.pop("_meta"), doc.pop("id")
    assert backfilled == streamed == reinserted, "backfill and streaming write the same document for the same row"
    assert streamed["grid"] == [["1", "2"], ["3", None]] and streamed["addr"] == "192.168.0.1" and streamed["d"] == "-0"
    assert streamed["at_bc"] == "-0043-03-15T12:00:00Z" and streamed["amounts"][0] == ["1.50", "NaN"]


def test_keyless_rows_that_could_collapse_and_names_that_differ_only_in_case_are_refused_at_publish(env: Env) -> None:
    with env.source() as conn:
        conn.execute("CREATE TABLE dupes (code text, body text)")
        conn.execute("ALTER TABLE dupes REPLICA IDENTITY FULL")
        conn.execute('CREATE TABLE cased (id int PRIMARY KEY, "Value" text, value text)')
    write_catalog(env.catalog_dir, extra_tables={"dupes": CODED}, keys={"dupes": ["/code"]}, demo_tables=False)
    plane = env.plane()
    with pytest.raises(DataPlaneError, match=r"public\.dupes has no primary key or unique index.*collapse"):
        plane.publish(["sophia/postgres-cdc"])
    write_catalog(env.catalog_dir, extra_tables={"cased": ANY}, demo_tables=False)
    with pytest.raises(DataPlaneError, match=r"fields 'Value' and 'value' would both be column VALUE"):
        plane.publish(["sophia/postgres-cdc"])

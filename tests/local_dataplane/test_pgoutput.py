"""The pgoutput v1 decoder and the text -> document value conversion."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sophia_dagster.dataplane import pgoutput
from sophia_dagster.dataplane.capture import PostgresCapture, SourceTable
from sophia_dagster.dataplane.values import (
    PgType,
    column_text,
    converter,
    decode,
    encode,
    parse_array,
    resolve_types,
)
from tests.local_dataplane.conftest import TYPE_ZOO_SQL, Env, zoo_row


def _s(text: str) -> bytes:
    return text.encode() + b"\0"


def _tuple(*values: object) -> bytes:
    out = struct.pack(">h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is pgoutput.UNCHANGED_TOAST:
            out += b"u"
        else:
            data = str(value).encode()
            out += b"t" + struct.pack(">i", len(data)) + data
    return out


def test_decodes_every_message_type() -> None:
    begin = pgoutput.decode(b"B" + struct.pack(">qqI", 0x16B374D848, 1_000_000, 742))
    assert begin.final_lsn == 0x16B374D848 and begin.xid == 742 and begin.commit_time.year == 2000
    commit = pgoutput.decode(b"C" + struct.pack(">bqqq", 0, 10, 20, 0))
    assert (commit.commit_lsn, commit.end_lsn) == (10, 20)
    relation = pgoutput.decode(
        b"R"
        + struct.pack(">I", 16384)
        + _s("public")
        + _s("deals")
        + b"d"
        + struct.pack(">h", 2)
        + b"\x01"
        + _s("id")
        + struct.pack(">Ii", 20, -1)
        + b"\x00"
        + _s("name")
        + struct.pack(">Ii", 25, -1)
    )
    assert relation.name == "deals" and relation.columns[0].is_key and not relation.columns[1].is_key
    insert = pgoutput.decode(b"I" + struct.pack(">I", 16384) + b"N" + _tuple(1, None))
    assert insert.new == ("1", None)
    update = pgoutput.decode(
        b"U" + struct.pack(">I", 1) + b"O" + _tuple(1, "a") + b"N" + _tuple(1, pgoutput.UNCHANGED_TOAST)
    )
    assert update.old_kind == "O" and update.old == ("1", "a") and update.new[1] is pgoutput.UNCHANGED_TOAST
    assert pgoutput.decode(b"U" + struct.pack(">I", 1) + b"N" + _tuple(2, "b")).old is None
    delete = pgoutput.decode(b"D" + struct.pack(">I", 1) + b"K" + _tuple(7, None))
    assert delete.old_kind == "K" and delete.old == ("7", None)
    truncate = pgoutput.decode(b"T" + struct.pack(">ibII", 2, 3, 5, 6))
    assert truncate.relation_ids == (5, 6) and truncate.cascade and truncate.restart_identity
    assert pgoutput.decode(b"O" + struct.pack(">q", 9) + _s("node_a")).name == "node_a"
    assert pgoutput.decode(b"Y" + struct.pack(">I", 9000) + _s("public") + _s("mood")).name == "mood"
    message = pgoutput.decode(b"M" + struct.pack(">bq", 1, 44) + _s("audit") + struct.pack(">i", 3) + b"abc")
    assert message.transactional and message.prefix == "audit" and message.content == b"abc"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"Z", "unknown pgoutput message type 'Z'"),
        (b"B\x00\x01", "truncated"),
        (b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">h", 1) + b"b", "binary mode"),
    ],
)
def test_rejects_malformed_messages(data: bytes, problem: str) -> None:
    with pytest.raises(pgoutput.DecodeError, match=problem):
        pgoutput.decode(data)


def test_lsn_round_trip() -> None:
    assert pgoutput.lsn_to_int("16/B374D848") == 0x16B374D848
    assert pgoutput.lsn_to_str(0x16B374D848) == "16/B374D848"


def test_values_convert_by_type() -> None:
    def convert(oid: int, text: str, element: int = 0) -> str:
        return encode(converter(PgType(oid, element))(text))

    assert convert(20, "-9223372036854775808") == "-9223372036854775808"
    assert convert(1700, "12345678901234567890.000000001") == '"12345678901234567890.000000001"'
    assert convert(1700, "NaN") == '"NaN"' and convert(1700, "-Infinity") == '"-Infinity"'
    assert convert(16, "t") == "true" and convert(16, "f") == "false"
    assert convert(3802, '{"a": [1.000000000000000000001, null]}') == '{"a": [1.000000000000000000001, null]}'
    assert convert(1184, "2025-01-02 03:04:05.123456+00") == '"2025-01-02T03:04:05.123456Z"'
    assert convert(1184, "0044-03-15 12:00:00+00 BC") == '"-0043-03-15T12:00:00Z"'
    assert convert(1184, "infinity") == '"infinity"'
    assert convert(1114, "2025-01-02 03:04:05") == '"2025-01-02T03:04:05Z"'
    assert convert(1082, "2025-01-02") == '"2025-01-02"' and convert(1082, "0001-01-01 BC") == '"0000-01-01"'
    assert convert(17, "\\x00ff") == '"AP8="'
    assert convert(701, "NaN") == '"NaN"' and convert(701, "-0") == "-0" and convert(701, "1e+100") == "1e+100"
    assert convert(1007, "{1,NULL,-3}", 23) == "[1,null,-3]"
    assert convert(1009, '{"a b","q\\"uote",NULL,"NULL",plain}', 25) == '["a b","q\\"uote",null,"NULL","plain"]'
    assert convert(1231, "{{1.50,NULL},{NaN,-0.0}}", 1700) == '[["1.50",null],["NaN","-0.0"]]'
    assert parse_array("[0:1]={5,6}", int) == [5, 6]
    assert decode('{"n": 3.141592653589793238462643383279}') == {"n": "3.141592653589793238462643383279"}


def test_a_real_slot_sends_unchanged_toast_values_as_u(env: Env) -> None:
    with env.source() as conn:
        conn.execute("CREATE TABLE toasty (id int PRIMARY KEY, n int, big text)")
        conn.execute("INSERT INTO toasty SELECT 1, 0, string_agg(md5(g::text), '') FROM generate_series(1, 500) g")
        conn.execute("CREATE PUBLICATION toast_pub FOR TABLE toasty")
        conn.execute("SELECT pg_create_logical_replication_slot('toast_slot', 'pgoutput')")
        conn.execute("UPDATE toasty SET n = 1")
        rows = conn.execute(
            "SELECT data FROM pg_logical_slot_get_binary_changes('toast_slot', NULL, NULL, "
            "'proto_version', '1', 'publication_names', 'toast_pub')"
        ).fetchall()
    updates = [m for m in (pgoutput.decode(r[0]) for r in rows) if isinstance(m, pgoutput.Update)]
    assert [u.new[:2] for u in updates] == [("1", "1")]
    assert updates[0].new[2] is pgoutput.UNCHANGED_TOAST


def test_backfill_documents_built_in_sql_equal_the_streamed_conversion(env: Env) -> None:
    with env.source() as conn:
        conn.execute(TYPE_ZOO_SQL)
        conn.execute(
            "ALTER TABLE type_zoo ADD COLUMN raw bytea, ADD COLUMN amounts numeric[], ADD COLUMN times timestamptz[],"
            " ADD COLUMN spans timestamp[], ADD COLUMN odd double precision"
        )
        with conn.cursor().copy("COPY type_zoo FROM STDIN") as copy:
            rng = random.Random(3)
            for key in range(1, 201):
                copy.write_row(
                    (
                        *zoo_row(key, rng),
                        rng.randbytes(rng.randint(0, 90)),
                        [Decimal("1.50"), None, Decimal("-0.001")],
                        [datetime(2024, 5, 6, 7, 8, 9, 123400, tzinfo=UTC)],
                        [datetime(1999, 12, 31, 23, 59, 59)],
                        rng.choice([float("nan"), float("inf"), 0.1, None]),
                    )
                )
    table = SourceTable("public", "type_zoo", "test/zoo", ("id",))
    capture = PostgresCapture(env.dsn, "unused", "unused", [table])
    try:
        with capture.snapshot() as (_, snapshot):
            built = {}
            for documents, values in capture.backfill(snapshot, table):
                for i, text in enumerate(documents.to_pylist()):
                    doc = decode(text)
                    built[doc["id"]] = (doc, {name: column[i].as_py() for name, column in values.items()})
            columns = snapshot.execute(
                "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = 'type_zoo'::regclass"
                " AND attnum > 0 ORDER BY attnum"
            ).fetchall()
            types = resolve_types(snapshot, [oid for _, oid in columns])
            with snapshot.cursor().copy("COPY type_zoo TO STDOUT") as copy:
                converted = [
                    {
                        name: None if v is None else converter(types[oid])(v)
                        for (name, oid), v in zip(columns, values, strict=True)
                    }
                    for values in copy.rows()
                ]
    finally:
        capture.close()
    assert len(built) == len(converted) == 200
    for expected in converted:
        actual, texts = built[expected["id"]]
        assert "_meta" not in actual  # added by the warehouse load, the same for every row
        assert actual == decode(encode(expected))
        assert texts == {name: column_text(value) for name, value in expected.items()}

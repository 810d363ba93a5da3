"""Demo schema -> backfill -> 10,000 mixed changes in many transactions -> materialize -> warehouse == source."""

from __future__ import annotations

import json
import random

from sophia_dagster.embedded.demo import generate_changes
from tests.local_dataplane.conftest import DEMO_TABLES, TYPE_ZOO_SQL, Env, assert_tables_equal, write_catalog, zoo_row

ZOO_SCHEMA = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}


def _zoo_changes(env: Env, rng: random.Random, first_key: int, n: int) -> None:
    placeholders = ", ".join(["%s"] * 17)
    with env.source() as conn:
        for start in range(0, n, 50):
            with conn.transaction():
                for i in range(start, min(n, start + 50)):
                    roll = rng.random()
                    key = rng.randint(1, first_key + i)
                    if roll < 0.4:
                        conn.execute(
                            f"INSERT INTO type_zoo VALUES ({placeholders}) ON CONFLICT DO NOTHING",
                            zoo_row(first_key + i, rng),
                        )
                    elif roll < 0.85:
                        conn.execute(
                            "UPDATE type_zoo SET label = %s, money = money + 1, words = array_append(words, 'x')"
                            " WHERE id = %s",
                            (f"updated {i}", key),
                        )
                    else:
                        conn.execute("DELETE FROM type_zoo WHERE id = %s", (key,))


def test_backfill_then_10000_changes_match_the_source(env: Env) -> None:
    rng = random.Random(42)
    write_catalog(env.catalog_dir, extra_tables={"type_zoo": ZOO_SCHEMA})
    with env.source() as conn:
        conn.execute(TYPE_ZOO_SQL)
        with conn.cursor().copy("COPY type_zoo FROM STDIN") as copy:
            for key in range(1, 301):
                copy.write_row(zoo_row(key, rng))
    plane = env.plane()
    first = plane.run("sophia/postgres-cdc")
    assert first.backfilled["sophia/postgres-cdc/type_zoo"] == 300
    assert first.backfilled["sophia/postgres-cdc/deals"] == 1200
    assert_tables_equal(env, (*DEMO_TABLES, "type_zoo"))

    counts = generate_changes(env.dsn, 9_000, seed=7, per_transaction=250)
    _zoo_changes(env, rng, 301, 1_000)
    assert sum(counts.values()) == 9_000
    second = plane.run("sophia/snowflake")
    assert second.backfilled == {}
    totals = second.totals()
    assert totals["inserted"] > 0 and totals["updated"] > 0 and totals["deleted"] > 0
    assert second.lag_bytes < 1_000_000
    assert_tables_equal(env, (*DEMO_TABLES, "type_zoo"))

    third = plane.run("sophia/postgres-cdc")
    assert sum(third.totals().values()) == 0, "a caught-up run must not move anything again"


def test_documents_carry_estuary_meta_and_deleted_rows_stay_soft_deleted(env: Env) -> None:
    plane = env.plane()
    plane.run("sophia/postgres-cdc")
    with env.source() as conn:
        conn.execute("UPDATE deals SET stage = 'proposal' WHERE id = 5")
        conn.execute("DELETE FROM deals WHERE id = 6")
        xid = conn.execute("SELECT txid_current()").fetchone()[0]
    plane.run("sophia/postgres-cdc")
    with env.warehouse() as conn:
        cursor = conn.cursor()
        cursor.execute(
            'SELECT id, "_meta/op", flow_document, flow_published_at FROM deals WHERE id IN (5, 6, 7) ORDER BY id'
        )
        rows = {row[0]: (row[1], json.loads(row[2]), row[3]) for row in cursor.fetchall()}
    op5, doc5, published5 = rows[5]
    assert op5 == "u" and doc5["stage"] == "proposal"
    source = doc5["_meta"]["source"]
    assert source["schema"] == "public" and source["table"] == "deals" and source["snapshot"] is False
    assert len(source["loc"]) == 3 and source["loc"][0] <= source["loc"][1] <= source["loc"][2]
    assert isinstance(source["txid"], int) and source["txid"] < xid and source["ts_ms"] > 0
    assert rows[6][0] == "d" and rows[6][1]["_meta"]["op"] == "d", "without hardDelete a deleted row stays, op d"
    assert rows[7][1]["_meta"]["op"] == "c" and rows[7][1]["_meta"]["source"]["snapshot"] is True
    assert published5 > rows[7][2]

"""SQLite derivations run in the embedded data plane: backfill, streamed changes, restarts, a failing commit of
their state after the warehouse committed, a failing lambda, exact numbers, and what still runs only in Estuary."""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any

import dagster as dg
import pytest
import yaml

from sophia_dagster.dataplane.errors import DataPlaneError
from sophia_dagster.dataplane.values import decode, encode
from sophia_dagster.estuary.assets import build_estuary_assets
from sophia_dagster.estuary.catalog import load_catalog
from tests.local_dataplane.conftest import Env, write_catalog

TOTALS = "sophia/derived/customer-totals"
BIG = "sophia/derived/big-orders"
HUB = "sophia/derived/hubspot-contacts"
CAPTURE = "sophia/postgres-cdc"
BIG_NUMBER = "123456789012345678901234567890.000000000000000000001"
SOURCE_SQL = """
CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, amount bigint NOT NULL, total numeric, note jsonb);
CREATE TABLE customers (id text PRIMARY KEY, name text);
"""
ORDERS_SCHEMA = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "integer"},
        "customer": {"type": "string"},
        "amount": {"type": "integer"},
        "total": {"type": ["string", "null"], "format": "number"},
        "note": {"type": ["object", "null"]},
    },
}
CUSTOMERS_SCHEMA = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
MIGRATION = (
    "CREATE TABLE totals (customer TEXT PRIMARY KEY, events INTEGER NOT NULL, total INTEGER NOT NULL"
    " CHECK (total >= 0));"
)
COUNTING = """
INSERT INTO totals (customer, events, total) SELECT $customer, 1, $amount WHERE $_meta$op != 'd'
  ON CONFLICT (customer) DO UPDATE SET events = events + 1, total = total + excluded.total;
SELECT customer, events, total, upper(customer) AS shout FROM totals WHERE customer = $customer;
"""
FILTER = """
SELECT JSON($flow_document) WHERE $_meta$op != 'd' AND $amount >= 100;
SELECT $id, $_meta WHERE $_meta$op = 'd';
"""


def write_derivations(env: Env, migrations: list[str] | None = None, counting: str = COUNTING) -> None:
    """The test catalog: orders and customers captured, two derivations of orders, all three materialized."""
    write_catalog(
        env.catalog_dir,
        extra_tables={"orders": ORDERS_SCHEMA, "customers": CUSTOMERS_SCHEMA},
        demo_tables=False,
        hard_delete=True,
    )
    captures = env.catalog_dir / "postgres-cdc.flow.yaml"
    data = yaml.safe_load(captures.read_text())
    data["collections"][TOTALS] = {
        "key": ["/customer"],
        "schema": {
            "type": "object",
            "required": ["customer"],
            "properties": {
                "customer": {"type": "string"},
                "events": {"type": "integer"},
                "total": {"type": "integer"},
                "shout": {"type": "string"},
            },
        },
        "derive": {
            "using": {"sqlite": {"migrations": migrations or [MIGRATION]}},
            "transforms": [
                {"name": "fromOrders", "source": "sophia/postgres-cdc/orders", "shuffle": {"key": ["/customer"]}}
                | {"lambda": counting}
            ],
        },
    }
    data["collections"][BIG] = {
        "key": ["/id"],
        "schema": ORDERS_SCHEMA,
        "derive": {
            "using": {"sqlite": {}},
            "transforms": [
                {
                    "name": "bigOnes",
                    "source": {"name": "sophia/postgres-cdc/orders"},
                    "shuffle": "any",
                    "lambda": FILTER,
                }
            ],
        },
    }
    captures.write_text(yaml.safe_dump(data, sort_keys=False))
    materializations = env.catalog_dir / "snowflake.flow.yaml"
    data = yaml.safe_load(materializations.read_text())
    bindings = data["materializations"]["sophia/snowflake"]["bindings"]
    bindings += [
        {"resource": {"table": "customer_totals"}, "source": TOTALS},
        {"resource": {"table": "big_orders"}, "source": BIG},
    ]
    materializations.write_text(yaml.safe_dump(data, sort_keys=False))


def seed(env: Env) -> None:
    with env.source() as conn:
        conn.execute(SOURCE_SQL)
        conn.execute(
            "INSERT INTO orders VALUES (1, 'ada', 50, '1.10', NULL), (2, 'ada', 150, %s, %s), (3, 'bob', 200, NULL, NULL)",
            (BIG_NUMBER, f'{{"exact": {BIG_NUMBER}}}'),
        )
        conn.execute("INSERT INTO customers VALUES ('ada', 'Ada')")


def totals(env: Env) -> dict[str, tuple[int, int, str]]:
    with env.warehouse() as conn:
        cursor = conn.cursor()
        cursor.execute('SELECT CUSTOMER, EVENTS, TOTAL, SHOUT FROM "CUSTOMER_TOTALS"')
        return {row[0]: (int(row[1]), int(row[2]), row[3]) for row in cursor.fetchall()}


def big_orders(env: Env) -> dict[int, dict[str, Any]]:
    with env.warehouse() as conn:
        cursor = conn.cursor()
        cursor.execute('SELECT ID, "_meta/op", FLOW_DOCUMENT::VARCHAR FROM "BIG_ORDERS"')
        return {int(row[0]): {**decode(row[2]), "row_op": row[1]} for row in cursor.fetchall()}


def state_rows(env: Env) -> dict[str, tuple[int, int]]:
    path = env.state_dir / "flow" / "derivations" / (TOTALS.replace("/", "_") + ".sqlite")
    with sqlite3.connect(path) as conn:
        return {c: (e, t) for c, e, t in conn.execute("SELECT customer, events, total FROM totals")}


def test_derivations_backfill_stream_and_restart(env: Env) -> None:
    seed(env)
    write_derivations(env)
    plane = env.plane()
    first = plane.run(CAPTURE)
    assert first.backfilled[TOTALS] == 2 and first.backfilled[BIG] == 2
    assert totals(env) == {"ada": (2, 200, "ADA"), "bob": (1, 200, "BOB")}
    big = big_orders(env)
    assert set(big) == {2, 3}
    assert big[2]["total"] == BIG_NUMBER and encode(big[2]["note"]) == f'{{"exact":{BIG_NUMBER}}}'
    assert big[2]["_meta"]["op"] == "c" and big[2]["_meta"]["source"]["snapshot"] is True

    with env.source() as conn:
        conn.execute("INSERT INTO orders VALUES (4, 'bob', 300, '7', NULL), (5, 'cy', 5, NULL, NULL)")
        conn.execute("UPDATE orders SET amount = 120 WHERE id = 1")
        conn.execute("DELETE FROM orders WHERE id = 3")
        conn.execute("INSERT INTO customers VALUES ('bob', 'Bob')")
    second = plane.run(CAPTURE)
    assert second.backfilled == {}
    assert second.counts[TOTALS] == Counter(inserted=3)
    assert totals(env) == {"ada": (3, 320, "ADA"), "bob": (2, 500, "BOB"), "cy": (1, 5, "CY")}
    assert set(big_orders(env)) == {1, 2, 4}, "order 3 was deleted (hardDelete), 1 grew past 100, 5 is small"
    assert big_orders(env)[1]["_meta"]["op"] == "u"

    restarted = env.plane().run(CAPTURE)
    assert restarted.backfilled == {} and restarted.counts.get(TOTALS) is None
    assert totals(env) == {"ada": (3, 320, "ADA"), "bob": (2, 500, "BOB"), "cy": (1, 5, "CY")}
    assert state_rows(env) == {"ada": (3, 320), "bob": (2, 500), "cy": (1, 5)}


def test_a_failed_state_commit_after_the_warehouse_commit_neither_loses_nor_doubles(env: Env) -> None:
    """A trigger the migration creates aborts the derivation's commit once the order 'boom' was counted: the
    warehouse has committed the batch, SQLite has not. Running again (with a migration dropping the trigger)
    re-derives the batch from the state as of the last commit and writes nothing twice."""
    seed(env)
    abort = (
        "CREATE TRIGGER fail_commit BEFORE UPDATE ON flow_local_checkpoint"
        " WHEN EXISTS (SELECT 1 FROM totals WHERE customer = 'boom')"
        " BEGIN SELECT RAISE(ABORT, 'injected failure of the state commit'); END;"
    )
    write_derivations(env, migrations=[MIGRATION, abort])
    plane = env.plane()
    plane.run(CAPTURE)
    with env.source() as conn:
        conn.execute("INSERT INTO orders VALUES (6, 'boom', 400, NULL, NULL), (7, 'ada', 100, NULL, NULL)")
    with pytest.raises(DataPlaneError, match="derivation sophia/derived/customer-totals: cannot commit its state"):
        plane.run(CAPTURE)
    assert totals(env) == {"ada": (3, 300, "ADA"), "bob": (1, 200, "BOB"), "boom": (1, 400, "BOOM")}
    assert state_rows(env) == {"ada": (2, 200), "bob": (1, 200)}, "the state is as of its last commit"

    write_derivations(env, migrations=[MIGRATION, abort, "DROP TRIGGER fail_commit;"])
    with env.source() as conn:
        conn.execute("UPDATE orders SET amount = 1 WHERE id = 7")
    again = env.plane().run(CAPTURE)
    assert again.backfilled == {}
    assert totals(env) == {"ada": (4, 301, "ADA"), "bob": (1, 200, "BOB"), "boom": (1, 400, "BOOM")}
    assert state_rows(env) == {"ada": (4, 301), "bob": (1, 200), "boom": (1, 400)}
    assert set(big_orders(env)) == {2, 3, 6, 7}, "7 was 100 when derived; its update to 1 is filtered out"


def test_a_failing_lambda_names_the_document_and_keeps_the_state(env: Env) -> None:
    seed(env)
    write_derivations(env)
    plane = env.plane()
    plane.run(CAPTURE)
    with env.source() as conn:
        conn.execute("INSERT INTO orders VALUES (8, 'ada', 1, NULL, NULL), (9, 'bob', -500, NULL, NULL)")
    with pytest.raises(DataPlaneError) as failed:
        plane.run(CAPTURE)
    message = str(failed.value)
    assert "derivation sophia/derived/customer-totals transform fromOrders" in message
    assert "sophia/postgres-cdc/orders with key {'id': 9}" in message and "CHECK constraint failed" in message
    assert totals(env) == {"ada": (2, 200, "ADA"), "bob": (1, 200, "BOB")}, "nothing of the batch was written"
    assert state_rows(env) == {"ada": (2, 200), "bob": (1, 200)}

    write_derivations(env, counting=COUNTING.replace("$amount WHERE", "abs($amount) WHERE"))
    env.plane().run(CAPTURE)
    assert totals(env) == {"ada": (3, 201, "ADA"), "bob": (2, 700, "BOB")}


def test_the_derivation_asset_materializes_here(env: Env) -> None:
    seed(env)
    write_derivations(env)
    catalog = load_catalog(env.catalog_dir)
    key = dg.AssetKey(["estuary", "sophia", "derived", "customer-totals"])
    asset = next(
        a for a in build_estuary_assets(catalog=catalog) if isinstance(a, dg.AssetsDefinition) and key in a.keys
    )
    result = dg.materialize([asset], resources={"estuary": env.plane()})
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["estuary/collection"].value == TOTALS
    assert metadata["estuary/rows_backfilled"].value == 2 and metadata["dagster/row_count"].value == 2
    assert env.plane().status([TOTALS])[0].status == "ok"


def test_what_cannot_run_here_says_so(env: Env) -> None:
    seed(env)
    write_derivations(env)
    path = env.catalog_dir / "postgres-cdc.flow.yaml"
    data = yaml.safe_load(path.read_text())
    data["collections"][TOTALS]["schema"]["properties"]["total"]["reduce"] = {"strategy": "sum"}
    data["collections"][BIG]["derive"]["transforms"][0]["source"] = TOTALS
    data["collections"][HUB] = {
        **data["collections"][BIG],
        "derive": {
            "using": {"sqlite": {}},
            "transforms": [
                {"name": "contacts", "source": "sophia/hubspot/contacts", "lambda": "SELECT JSON($flow_document);"}
            ],
        },
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    plane = env.plane()
    assert plane.not_runnable_reason(TOTALS) == (
        f"derivation {TOTALS} (SQLite) runs only in Estuary: its schema reduces documents "
        "(/properties/total (sum)); locally the last document per key is kept. Publish it in dev/prod."
    )
    assert plane.not_runnable_reason(BIG) == (
        f"derivation {BIG} (SQLite) runs only in Estuary: transform bigOnes reads derivation {TOTALS}; derivations "
        "of derivations run only in Estuary. Publish it in dev/prod."
    )
    big = dg.AssetKey(["estuary", "sophia", "derived", "big-orders"])
    assets = build_estuary_assets(catalog=load_catalog(env.catalog_dir))
    left_out = dg.materialize(
        [a for a in assets if isinstance(a, dg.AssetsDefinition) and big in a.keys], resources={"estuary": plane}
    )
    assert left_out.success and left_out.get_asset_materialization_events() == []
    assert plane.not_runnable_reason(HUB) == (
        f"derivation {HUB} (SQLite) runs only in Estuary: transform contacts reads sophia/hubspot/contacts of "
        "sophia/hubspot; locally derivations read source-postgres captures only. Publish it in dev/prod."
    )
    write_derivations(env, counting=COUNTING.replace("$amount WHERE", "$amont WHERE"))
    with pytest.raises(DataPlaneError) as unknown:
        env.plane().publish([TOTALS], dry_run=True)
    assert str(unknown.value) == (
        f"cannot publish {TOTALS}: derivation {TOTALS}: lambda of transform fromOrders is invalid: parameter $amont "
        "not found: did you mean $amount ?"
    )

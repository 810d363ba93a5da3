"""Sophia's demo source schema: seeded once, then kept changing on demand for demos, tests and benchmarks."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources

import psycopg

TABLES = ("companies", "contacts", "deals", "calls", "conversations")
SEED_SIZES = {"companies": 200, "contacts": 1_500, "deals": 1_200, "calls": 1_500, "conversations": 800}
STAGES = ("prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost")
OWNERS = ("ava.chen", "marcus.reid", "priya.nair", "tom.okafor", "lena.fischer")
INDUSTRIES = ("software", "fintech", "healthcare", "logistics", "retail", "energy", None)
CHANNELS = ("email", "chat", "phone", "sms")
WORDS = (
    "pricing renewal onboarding integration pipeline budget procurement security review champion timeline "
    "discount contract pilot rollout support latency dashboard forecast quota expansion churn risk legal "
    "stakeholder demo roadmap feedback migration warehouse realtime sync compliance"
).split()
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def _schema_sql() -> str:
    return resources.files("sophia_dagster.embedded").joinpath("demo_schema.sql").read_text()


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _transcript(rng: random.Random) -> str:
    """Mostly short; one in ten is long enough to be stored out of line (TOAST)."""
    turns = rng.randint(40, 60) if rng.random() < 0.1 else rng.randint(3, 12)
    return "\n".join(f"{rng.choice(('rep', 'customer'))}: {_sentence(rng, rng.randint(8, 30))}" for _ in range(turns))


def _when(rng: random.Random) -> datetime:
    return EPOCH + timedelta(seconds=rng.randint(0, 300 * 86_400), microseconds=rng.randint(0, 999_999))


def _row(table: str, key: int, rng: random.Random, pick: Callable[[str], object]) -> tuple:
    """One realistic row of `table` with primary key `key`; `pick(parent)` chooses a referenced key."""
    created = _when(rng)

    def maybe(value: object) -> object:
        return None if rng.random() < 0.08 else value

    if table == "companies":
        return (
            key,
            f"Company {key}",
            f"company{key}.example.com",
            rng.choice(INDUSTRIES),
            rng.randint(5, 20_000),
            Decimal(rng.randint(10_000, 90_000_000)) / 100,
            created,
            created,
        )
    if table == "contacts":
        return (
            key,
            pick("companies"),
            f"First{key}",
            f"Last{key}",
            f"contact{key}@example.com",
            maybe(rng.choice(("CTO", "VP Sales", "Head of Data", "Engineer"))),
            maybe(f"+1-555-{key:07d}"),
            rng.random() < 0.9,
            maybe(created.replace(tzinfo=None)),
            created,
            created,
        )
    if table == "deals":
        return (
            key,
            pick("companies"),
            maybe(pick("contacts")),
            f"Deal {key}",
            rng.choice(STAGES),
            Decimal(rng.randint(100_00, 2_500_000_00)) / 100,
            "USD",
            rng.choice(OWNERS),
            maybe(date(2025, 1, 1) + timedelta(days=rng.randint(0, 500))),
            rng.randint(0, 100),
            created,
            created,
        )
    if table == "calls":
        return (
            uuid.UUID(int=key),
            maybe(pick("deals")),
            pick("contacts"),
            created,
            rng.randint(30, 3_600),
            _transcript(rng),
            maybe(Decimal(rng.randint(-1000, 1000)) / 1000),
            rng.sample(WORDS, rng.randint(0, 4)),
            created,
        )
    messages = [
        {"role": rng.choice(("user", "assistant")), "text": _sentence(rng, 12)} for _ in range(rng.randint(1, 6))
    ]
    return (
        key,
        pick("contacts"),
        rng.choice(CHANNELS),
        json.dumps(messages),
        json.dumps({"source": "demo", "score": rng.randint(1, 5)}),
        created,
        created,
    )


COLUMNS = {
    "companies": "id, name, domain, industry, employees, annual_revenue, created_at, updated_at",
    "contacts": "id, company_id, first_name, last_name, email, title, phone, is_active, last_contacted, "
    "created_at, updated_at",
    "deals": "id, company_id, contact_id, name, stage, amount, currency, owner, close_date, probability, "
    "created_at, updated_at",
    "calls": "id, deal_id, contact_id, started_at, duration_seconds, transcript, sentiment, tags, updated_at",
    "conversations": "id, contact_id, channel, messages, metadata, created_at, updated_at",
}


SOURCE_SETUP = "sophia_dagster.embedded.demo:seed_demo"
"""How the embedded data plane is told to prepare the embedded source (its ``embedded_source_setup``)."""


def seed_demo(dsn: str, sizes: dict[str, int] | None = None, seed: int = 7) -> bool:
    """Create the demo schema and load its rows once; returns False when it was already seeded."""
    sizes = {**SEED_SIZES, **(sizes or {})}
    rng = random.Random(seed)
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(4242)")
        if conn.execute("SELECT to_regclass('public.sophia_demo_seed')").fetchone()[0]:
            return False
        conn.execute(_schema_sql())
        with conn.cursor() as cur:
            for table in TABLES:
                with cur.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
                    for key in range(1, sizes[table] + 1):
                        copy.write_row(_row(table, key, rng, lambda parent: rng.randint(1, sizes[parent])))
            for table in ("companies", "contacts", "deals", "conversations"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {sizes[table]})")
            cur.execute("CREATE TABLE sophia_demo_seed (seeded_at timestamptz NOT NULL DEFAULT now(), sizes jsonb)")
            cur.execute("INSERT INTO sophia_demo_seed (sizes) VALUES (%s)", (json.dumps(sizes),))
    return True


def _random_key(cur: psycopg.Cursor, table: str) -> object | None:
    row = cur.execute(f"SELECT id FROM {table} TABLESAMPLE SYSTEM (5) LIMIT 1").fetchone()
    row = row or cur.execute(f"SELECT id FROM {table} ORDER BY random() LIMIT 1").fetchone()
    return row[0] if row else None


def _change(cur: psycopg.Cursor, rng: random.Random) -> str:
    """Apply one random insert, update or delete; returns its kind."""
    table = rng.choice(("deals", "deals", "contacts", "calls", "conversations", "companies"))
    roll = rng.random()
    if roll < 0.45:
        row = _row(table, 0, rng, lambda parent: _random_key(cur, parent))[1:]
        columns = COLUMNS[table].split(", ", 1)[1]
        cur.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(row))})", row)
        return "inserted"
    key = _random_key(cur, table)
    if key is None:
        return "skipped"
    if roll < 0.85 or table == "companies":
        cur.execute(_UPDATES[table], {"id": key, "n": rng.randint(1, 100), "now": datetime.now(UTC)})
        return "updated"
    cur.execute(f"DELETE FROM {table} WHERE id = %s", (key,))
    return "deleted"


_UPDATES = {
    "companies": "UPDATE companies SET employees = employees + %(n)s, updated_at = %(now)s WHERE id = %(id)s",
    "contacts": "UPDATE contacts SET is_active = NOT is_active, title = coalesce(title, 'Advisor'), "
    "updated_at = %(now)s WHERE id = %(id)s",
    "deals": "UPDATE deals SET stage = (ARRAY['prospecting','qualification','proposal','negotiation',"
    "'closed_won','closed_lost'])[1 + %(n)s %% 6], amount = amount + %(n)s * 10.01, probability = %(n)s, "
    "updated_at = %(now)s WHERE id = %(id)s",
    "calls": "UPDATE calls SET sentiment = round((%(n)s - 50) / 50.0, 3), tags = array_append(tags, 'followup'), "
    "updated_at = %(now)s WHERE id = %(id)s",
    "conversations": "UPDATE conversations SET messages = messages || jsonb_build_array(jsonb_build_object("
    "'role', 'user', 'text', 'update ' || %(n)s)), updated_at = %(now)s WHERE id = %(id)s",
}


def generate_changes(dsn: str, n: int, seed: int | None = None, per_transaction: int = 100) -> dict[str, int]:
    """Apply `n` random inserts, updates and deletes in transactions of `per_transaction`; returns counts."""
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            for start in range(0, n, per_transaction):
                with conn.transaction():
                    for _ in range(min(per_transaction, n - start)):
                        counts[_change(cur, rng)] += 1
    return dict(counts)

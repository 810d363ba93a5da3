"""Demo assets on the memory tiers: call-transcript knowledge (L3), per-contact conversation context (L2),
and a hot deal-pipeline table cached in Redis over the warehouse (tiered L1 over L4) with a small L1 rollup.

Resources are bound in `defs/resources.py` from `memory_resources(settings)`.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pyarrow as pa

from sophia_dagster.memory.refs import TTL_METADATA_KEY
from sophia_dagster.memory.resources import memory_resources
from sophia_dagster.postgres_source import SourcePostgres

__all__ = ["memory", "memory_resources"]

CONTEXT_MESSAGES = 20
KNOWLEDGE = dg.AssetKey(["memory", "knowledge", "call_transcripts"])
CONTEXT = dg.AssetKey(["memory", "conversations", "contact_context"])
PIPELINE = dg.AssetKey(["memory", "hot", "deal_pipeline"])
TOTALS = dg.AssetKey(["memory", "hot", "pipeline_totals"])


def _source(table: str) -> dg.AssetKey:
    return dg.AssetKey(["postgres", "public", table])


@dg.asset(
    key=KNOWLEDGE,
    deps=[_source("calls")],
    io_manager_key="l3_io_manager",
    group_name="memory",
    kinds={"postgres", "python"},
)
def call_transcript_knowledge(source_postgres: SourcePostgres) -> list[dict[str, Any]]:
    """Every call transcript as a knowledge document (L3), with contact, deal, tags and sentiment as metadata."""
    with source_postgres.connect() as conn:
        rows = conn.execute(
            "SELECT id::text, contact_id, deal_id, started_at, sentiment::float8, tags, transcript"
            " FROM public.calls ORDER BY started_at, id"
        ).fetchall()
    return [
        {
            "id": call_id,
            "content": transcript,
            "metadata": {
                "contact_id": contact_id,
                "deal_id": deal_id,
                "started_at": started.isoformat(),
                "sentiment": sentiment,
                "tags": tags,
            },
        }
        for call_id, contact_id, deal_id, started, sentiment, tags, transcript in rows
    ]


@dg.asset(
    key=CONTEXT,
    deps=[_source("conversations")],
    io_manager_key="l2_io_manager",
    group_name="memory",
    kinds={"postgres"},
)
def contact_conversation_context(source_postgres: SourcePostgres) -> list[dict[str, Any]]:
    """Per contact, the last messages across their conversations, oldest first (L2 documents)."""
    with source_postgres.connect() as conn:
        rows = conn.execute(
            "SELECT c.contact_id, count(DISTINCT c.id), max(c.updated_at),"
            " (jsonb_agg(m.message || jsonb_build_object('channel', c.channel)"
            "  ORDER BY c.created_at DESC, m.position DESC))"
            " FROM public.conversations c"
            " CROSS JOIN LATERAL jsonb_array_elements(c.messages) WITH ORDINALITY AS m(message, position)"
            " WHERE c.contact_id IS NOT NULL GROUP BY c.contact_id ORDER BY c.contact_id"
        ).fetchall()
    return [
        {
            "contact_id": contact_id,
            "conversations": count,
            "last_activity": last.isoformat(),
            "messages": list(reversed(messages[:CONTEXT_MESSAGES])),
        }
        for contact_id, count, last, messages in rows
    ]


@dg.asset(
    key=PIPELINE,
    deps=[_source("deals")],
    io_manager_key="tiered_io_manager",
    group_name="memory",
    metadata={TTL_METADATA_KEY: 3_600},
    kinds={"snowflake", "redis"},
)
def deal_pipeline(source_postgres: SourcePostgres) -> pa.Table:
    """Open deal pipeline by owner and stage: kept in the warehouse (L4), served hot from Redis (L1)."""
    with source_postgres.connect() as conn:
        cursor = conn.execute(
            "SELECT owner, stage, count(*)::int8 AS deals, sum(amount)::float8 AS amount,"
            " avg(probability)::float8 AS avg_probability FROM public.deals"
            " WHERE stage NOT IN ('closed_won', 'closed_lost') GROUP BY owner, stage ORDER BY owner, stage"
        )
        names = [column.name for column in cursor.description]
        rows = cursor.fetchall()
    return pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in rows])


@dg.asset(
    key=TOTALS,
    ins={"pipeline": dg.AssetIn(PIPELINE)},
    io_manager_key="l1_io_manager",
    group_name="memory",
    metadata={TTL_METADATA_KEY: 900},
    kinds={"redis"},
)
def pipeline_totals(pipeline: pa.Table) -> dict[str, Any]:
    """Open pipeline totals per stage, cached in Redis for 15 minutes (L1)."""
    totals: dict[str, dict[str, float]] = {}
    for row in pipeline.to_pylist():
        stage = totals.setdefault(row["stage"], {"deals": 0, "amount": 0.0})
        stage["deals"] += row["deals"]
        stage["amount"] = round(stage["amount"] + row["amount"], 2)
    return {"stages": totals, "owners": sorted(set(pipeline.column("owner").to_pylist()))}


@dg.definitions
def memory() -> dg.Definitions:
    """The memory demo assets (resources are bound by `defs/resources.py`)."""
    return dg.Definitions(
        assets=[call_transcript_knowledge, contact_conversation_context, deal_pipeline, pipeline_totals]
    )

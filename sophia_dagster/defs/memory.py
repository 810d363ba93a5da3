"""Demo assets on the memory tiers: call-transcript knowledge (L3), per-contact conversation context (L2),
and a hot deal-pipeline table cached in Redis over the warehouse (tiered L1 over L4) with a small L1 rollup.

They read the warehouse, never the source: source -> collection -> raw table -> model -> memory.
Resources are bound in `defs/resources.py` from `memory_resources(settings)`.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
import pyarrow as pa
from dagster_snowflake import SnowflakeResource

from sophia_dagster.memory.refs import TTL_METADATA_KEY
from sophia_dagster.memory.resources import memory_resources
from sophia_dagster.warehouse.models import table_key

__all__ = ["memory", "memory_resources"]

CONTEXT_MESSAGES = 20
KNOWLEDGE = dg.AssetKey(["memory", "knowledge", "call_transcripts"])
CONTEXT = dg.AssetKey(["memory", "conversations", "contact_context"])
PIPELINE = dg.AssetKey(["memory", "hot", "deal_pipeline"])
TOTALS = dg.AssetKey(["memory", "hot", "pipeline_totals"])
RAW_CALLS = "SOPHIA.RAW.CALLS"
RAW_CONVERSATIONS = "SOPHIA.RAW.CONVERSATIONS"
PIPELINE_MODEL = "SOPHIA.ANALYTICS.DEAL_PIPELINE"
PIPELINE_SCHEMA = pa.schema(
    [
        ("owner", pa.string()),
        ("stage", pa.string()),
        ("deals", pa.int64()),
        ("amount", pa.float64()),
        ("avg_probability", pa.float64()),
    ]
)
LIVE = "COALESCE(FLOW_DOCUMENT:_meta:op::STRING, 'c') <> 'd'"


def _query(snowflake: SnowflakeResource, sql: str) -> list[dict[str, Any]]:
    """Rows of `sql` on the warehouse as dicts keyed by lower-case column name."""
    with snowflake.get_connection() as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        names = [column[0].lower() for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _variant(value: Any) -> Any:
    """A VARIANT column's value: the connector hands semi-structured values over as JSON text."""
    return json.loads(value) if isinstance(value, str) else value


@dg.asset(
    key=KNOWLEDGE,
    deps=[table_key(RAW_CALLS)],
    io_manager_key="l3_io_manager",
    group_name="memory",
    kinds={"snowflake", "python"},
)
def call_transcript_knowledge(snowflake: SnowflakeResource) -> list[dict[str, Any]]:
    """Every live call transcript in the warehouse as a knowledge document (L3), with its context as metadata."""
    rows = _query(
        snowflake,
        "SELECT ID::STRING AS ID, CONTACT_ID, DEAL_ID, STARTED_AT::TIMESTAMP_TZ AS STARTED_AT,"
        f" SENTIMENT::FLOAT AS SENTIMENT, TAGS, TRANSCRIPT FROM {RAW_CALLS} WHERE {LIVE} ORDER BY STARTED_AT, ID",
    )
    return [
        {
            "id": row["id"],
            "content": row["transcript"],
            "metadata": {
                "contact_id": row["contact_id"],
                "deal_id": row["deal_id"],
                "started_at": row["started_at"].isoformat(),
                "sentiment": row["sentiment"],
                "tags": _variant(row["tags"]),
            },
        }
        for row in rows
    ]


def _contact_context(conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """One contact's context: their last messages across conversations, oldest first."""
    newest_first = sorted(conversations, key=lambda c: c["created_at"], reverse=True)
    messages = [
        {**message, "channel": conversation["channel"]}
        for conversation in newest_first
        for message in reversed(_variant(conversation["messages"]) or [])
    ]
    return {
        "contact_id": conversations[0]["contact_id"],
        "conversations": len(conversations),
        "last_activity": max(c["updated_at"] for c in conversations).isoformat(),
        "messages": list(reversed(messages[:CONTEXT_MESSAGES])),
    }


@dg.asset(
    key=CONTEXT,
    deps=[table_key(RAW_CONVERSATIONS)],
    io_manager_key="l2_io_manager",
    group_name="memory",
    kinds={"snowflake", "postgres"},
)
def contact_conversation_context(snowflake: SnowflakeResource) -> list[dict[str, Any]]:
    """Per contact, the last messages across their live conversations in the warehouse, oldest first (L2)."""
    rows = _query(
        snowflake,
        "SELECT CONTACT_ID, CHANNEL, MESSAGES, CREATED_AT::TIMESTAMP_TZ AS CREATED_AT,"
        f" UPDATED_AT::TIMESTAMP_TZ AS UPDATED_AT FROM {RAW_CONVERSATIONS}"
        f" WHERE {LIVE} AND CONTACT_ID IS NOT NULL ORDER BY CONTACT_ID, ID",
    )
    by_contact: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_contact.setdefault(row["contact_id"], []).append(row)
    return [_contact_context(conversations) for conversations in by_contact.values()]


@dg.asset(
    key=PIPELINE,
    deps=[table_key(PIPELINE_MODEL)],
    io_manager_key="tiered_io_manager",
    group_name="memory",
    metadata={TTL_METADATA_KEY: 3_600},
    kinds={"snowflake", "redis"},
)
def deal_pipeline(snowflake: SnowflakeResource) -> pa.Table:
    """Open deal pipeline by owner and stage, from the analytics model: kept in the warehouse (L4), hot in Redis (L1)."""
    rows = _query(
        snowflake,
        "SELECT OWNER, STAGE, DEAL_COUNT::BIGINT AS DEALS, TOTAL_AMOUNT::FLOAT AS AMOUNT,"
        f" AVG_PROBABILITY::FLOAT AS AVG_PROBABILITY FROM {PIPELINE_MODEL} WHERE IS_OPEN ORDER BY OWNER, STAGE",
    )
    return pa.Table.from_pylist(rows, schema=PIPELINE_SCHEMA)


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

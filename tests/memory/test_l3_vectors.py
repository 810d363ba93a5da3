"""L3 vectors: pgvector on the embedded PostgreSQL, the hashing embedding, and the Snowflake SQL."""

from __future__ import annotations

import math

import dagster as dg
import psycopg
import pytest
import sqlglot

from sophia_dagster.memory.embedding import DIMENSIONS, embed
from sophia_dagster.memory.l3_pgvector import PgVectorKnowledgeStore
from sophia_dagster.memory.l3_snowflake import (
    DEFAULT_MODEL,
    create_table_sql,
    load_table_sql,
    replace_statements,
    search_statement,
)
from sophia_dagster.memory.l3_vectors import KnowledgeIOManager
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.postgres_source import SourcePostgres
from tests.memory.conftest import asset_returning, collector

TOPICS = {
    "billing": [
        "The invoice total was wrong and the customer asked for a refund of the overcharge.",
        "Payment failed because the credit card expired; billing retried the charge.",
        "Customer disputes the annual invoice and wants a discount on the renewal price.",
        "Refund processed for the duplicate payment on last month's invoice.",
    ],
    "security": [
        "Security review needs SOC 2 report and single sign-on with SAML before rollout.",
        "The customer's security team asked about encryption at rest and key rotation.",
        "Penetration test findings: password policy and multi-factor authentication gaps.",
        "Data residency and encryption requirements from the customer's security questionnaire.",
    ],
    "onboarding": [
        "Onboarding kickoff: schedule training sessions and import the contact list.",
        "New users need onboarding help configuring dashboards and inviting teammates.",
        "Training plan for onboarding the support team during the first week.",
        "Import of historical data and onboarding checklist for the admin.",
    ],
}
QUERIES = {
    "refund for a wrong invoice charge": "billing",
    "SAML single sign-on and encryption for the security review": "security",
    "training sessions to onboard new users": "onboarding",
}


def _labelled_docs() -> list[dict[str, object]]:
    return [
        {"id": f"{topic}-{i}", "content": text, "metadata": {"topic": topic, "team": "sales" if i % 2 else "support"}}
        for topic, texts in TOPICS.items()
        for i, text in enumerate(texts)
    ]


@pytest.fixture(scope="module")
def knowledge(embedded_postgres: SourcePostgres, pg_schema: str) -> PgVectorKnowledgeStore:
    store = PgVectorKnowledgeStore(postgres=embedded_postgres, schema_name=pg_schema)
    store.write(OutputRef(("l3_labelled",)), _labelled_docs(), "v1")
    return store


def test_embedding_is_deterministic_unit_length_and_lexical() -> None:
    vector = embed("Renewal pricing discussion")
    assert len(vector) == DIMENSIONS
    assert math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-9)
    assert vector == embed("renewal  PRICING discussion!")
    near = sum(a * b for a, b in zip(vector, embed("pricing for the renewal"), strict=True))
    far = sum(a * b for a, b in zip(vector, embed("kubernetes cluster autoscaling"), strict=True))
    assert near > 0.3 > far
    assert embed("") == [0.0] * DIMENSIONS


@pytest.mark.parametrize("query, topic", QUERIES.items())
def test_search_returns_the_expected_neighbours(knowledge: PgVectorKnowledgeStore, query: str, topic: str) -> None:
    hits = knowledge.search(query, limit=3)
    assert [hit.metadata["topic"] for hit in hits] == [topic] * 3
    assert hits[0].score >= hits[1].score >= hits[2].score > 0


def test_metadata_filters_restrict_the_search(knowledge: PgVectorKnowledgeStore) -> None:
    hits = knowledge.search("refund for a wrong invoice charge", limit=10, filters={"team": "sales"})
    assert len(hits) == 6
    assert {hit.metadata["team"] for hit in hits} == {"sales"}
    assert hits[0].metadata["topic"] == "billing"
    assert knowledge.search("invoice", filters={"topic": "nonexistent"}) == []
    with pytest.raises(ValueError, match="metadata filter key 'team; drop' must be a plain identifier"):
        knowledge.search("invoice", filters={"team; drop": "x"})


def test_io_manager_round_trip_with_partitions(
    embedded_postgres: SourcePostgres, pg_schema: str, knowledge: PgVectorKnowledgeStore
) -> None:
    partitions = dg.StaticPartitionsDefinition(["q1", "q2"])
    contents = {"q1": ["first quarter renewal", "q1 pricing"], "q2": ["second quarter expansion"]}

    @dg.asset(partitions_def=partitions, io_manager_key="io")
    def quarterly_notes(context) -> list[dict[str, object]]:
        return [
            {"id": f"n{i}", "content": text, "metadata": {"quarter": context.partition_key}}
            for i, text in enumerate(contents[context.partition_key])
        ]

    resources, instance = {"io": KnowledgeIOManager(store=knowledge)}, dg.DagsterInstance.ephemeral()
    for key in ("q1", "q1", "q2"):
        assert dg.materialize([quarterly_notes], partition_key=key, resources=resources, instance=instance).success
    sink: dict[str, object] = {}
    collect = collector(["quarterly_notes"], sink)
    assert dg.materialize(
        [quarterly_notes, collect], selection=[collect.key], resources=resources, instance=instance
    ).success
    assert sink["quarterly_notes"]["q1"] == [
        {"id": "n0", "content": "first quarter renewal", "metadata": {"quarter": "q1"}},
        {"id": "n1", "content": "q1 pricing", "metadata": {"quarter": "q1"}},
    ]
    with psycopg.connect(embedded_postgres.get_dsn()) as conn:
        count, dims = conn.execute(
            f"SELECT count(*), max(vector_dims(embedding)) FROM {pg_schema}.knowledge WHERE asset_key = 'quarterly_notes'"
        ).fetchone()
    assert (count, dims) == (3, DIMENSIONS)
    assert knowledge.search("second quarter expansion", limit=1, filters={"quarter": "q2"})[0].id == "n0"


def test_bad_documents_are_refused_with_the_asset_named(knowledge: PgVectorKnowledgeStore) -> None:
    manager = KnowledgeIOManager(store=knowledge)
    result = dg.materialize(
        [asset_returning("l3_bad", [{"id": "a", "text": "no content key"}])],
        resources={"io": manager},
        raise_on_error=False,
    )
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert (
        "L3 pgvector could not store asset l3_bad: ValueError: asset l3_bad: document 0 needs a string 'content'"
        in (error.cause.message if error.cause else error.message)
    )


def _parses_as_snowflake(sql: str) -> str:
    return sqlglot.parse_one(sql.replace("%(", "__p_").replace(")s", "__"), read="snowflake").sql("snowflake")


def test_snowflake_ddl_has_a_768_float_vector_column() -> None:
    ddl = create_table_sql("SOPHIA_MEMORY.KNOWLEDGE")
    assert "EMBEDDING VECTOR(FLOAT, 768) NOT NULL" in _parses_as_snowflake(ddl)
    assert "CREATE OR REPLACE TEMPORARY TABLE X_LOAD" in _parses_as_snowflake(load_table_sql("X_LOAD"))


def test_snowflake_write_embeds_with_cortex_inside_a_transaction() -> None:
    statements = replace_statements("K", "K_LOAD", OutputRef(("a", "b"), "p1"), "v9", DEFAULT_MODEL, True)
    assert [sql.split()[0] for sql, _ in statements] == ["BEGIN", "DELETE", "INSERT", "COMMIT"]
    delete_sql, params = statements[1]
    assert delete_sql == "DELETE FROM K WHERE ASSET_KEY = %(asset)s AND PARTITION_KEY = %(partition)s"
    assert params == {"asset": "a/b", "partition": "p1", "version": "v9", "model": "snowflake-arctic-embed-m-v1.5"}
    insert_sql = _parses_as_snowflake(statements[2][0])
    assert "SNOWFLAKE.CORTEX.EMBED_TEXT_768(__p_model__, CONTENT) FROM K_LOAD" in insert_sql
    assert "PARSE_JSON(METADATA)" in insert_sql
    only_ids = replace_statements("K", "K_LOAD", OutputRef(("a",)), "v", DEFAULT_MODEL, False)[1][0]
    assert only_ids.endswith("AND DOC_ID IN (SELECT DOC_ID FROM K_LOAD)")


def test_snowflake_search_ranks_by_cosine_with_metadata_filters() -> None:
    sql, params = search_statement("K", DEFAULT_MODEL, "renewal risk", 4, {"team": "sales", "tier": 2})
    parsed = _parses_as_snowflake(sql)
    assert "VECTOR_COSINE_SIMILARITY(EMBEDDING, SNOWFLAKE.CORTEX.EMBED_TEXT_768(__p_model__, __p_query__))" in parsed
    assert "ORDER BY SCORE DESC LIMIT __p_limit__" in parsed
    assert 'METADATA:"team" = PARSE_JSON(%(f0)s) AND METADATA:"tier" = PARSE_JSON(%(f1)s)' in sql
    assert params == {"model": DEFAULT_MODEL, "query": "renewal risk", "limit": 4, "f0": '"sales"', "f1": "2"}
    assert "WHERE" not in search_statement("K", DEFAULT_MODEL, "q", 1, None)[0]

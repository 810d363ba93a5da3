"""Each analytics model, materialized on the embedded warehouse over the landed raw CDC tables, checked
against the same figures computed independently from the source PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from sophia_dagster.embedded.demo import TABLES
from sophia_dagster.warehouse.embedded import EmbeddedSnowflakeResource
from tests.warehouse.conftest import Landing, materialize_model, source_rows, warehouse_rows

CENT = Decimal("0.01")


def by_key(rows: list[dict], *key: str) -> dict[tuple, dict]:
    return {tuple(row[name] for name in key): row for row in rows}


def test_raw_tables_keep_soft_deleted_rows(landing: Landing, snowflake: EmbeddedSnowflakeResource) -> None:
    """The landing really holds deleted rows, so the models' exclusion is exercised."""
    for table in TABLES:
        [source] = source_rows(landing.dsn, f"SELECT count(*) AS n FROM {table}")
        raw = warehouse_rows(
            snowflake, f"SELECT ID, FLOW_DOCUMENT:_meta:op::STRING AS OP FROM SOPHIA.RAW.{table.upper()}"
        )
        deleted = sorted(str(row["id"]) for row in raw if row["op"] == "d")
        assert deleted == sorted(str(key) for key in landing.deleted[table])
        assert len(raw) == source["n"] + len(deleted)


def test_deal_pipeline_matches_source(landing: Landing, snowflake: EmbeddedSnowflakeResource) -> None:
    metadata = materialize_model("deal_pipeline", snowflake)
    expected = source_rows(
        landing.dsn,
        """
        SELECT stage, owner, stage NOT IN ('closed_won', 'closed_lost') AS is_open, count(*) AS deal_count,
               sum(amount) AS total_amount, sum(amount * probability / 100.0) AS weighted_amount,
               avg(probability) AS avg_probability, max(updated_at) AS last_updated_at
        FROM deals GROUP BY stage, owner""",
    )
    actual = by_key(warehouse_rows(snowflake, "SELECT * FROM SOPHIA.ANALYTICS.DEAL_PIPELINE"), "stage", "owner")
    assert metadata["dagster/row_count"] == len(actual) == len(expected)
    for row in expected:
        got = actual[(row["stage"], row["owner"])]
        assert (got["is_open"], got["deal_count"], got["total_amount"], got["last_updated_at"]) == (
            row["is_open"],
            row["deal_count"],
            row["total_amount"],
            row["last_updated_at"],
        )
        assert abs(got["weighted_amount"] - row["weighted_amount"]) <= CENT
        assert abs(got["avg_probability"] - row["avg_probability"]) <= CENT


CUSTOMER_360_SQL = """
    WITH last_call AS (
        SELECT DISTINCT ON (ct.company_id) ct.company_id, c.started_at, c.sentiment
        FROM calls c JOIN contacts ct ON ct.id = c.contact_id
        ORDER BY ct.company_id, c.started_at DESC)
    SELECT co.id AS company_id, co.name AS company_name, co.industry, co.employees,
           (SELECT count(*) FROM contacts WHERE company_id = co.id) AS contact_count,
           (SELECT count(*) FROM contacts WHERE company_id = co.id AND is_active) AS active_contact_count,
           (SELECT count(*) FROM deals WHERE company_id = co.id AND stage NOT IN ('closed_won', 'closed_lost'))
               AS open_deal_count,
           (SELECT coalesce(sum(amount), 0) FROM deals
             WHERE company_id = co.id AND stage NOT IN ('closed_won', 'closed_lost')) AS open_pipeline_amount,
           (SELECT coalesce(sum(amount), 0) FROM deals WHERE company_id = co.id AND stage = 'closed_won') AS won_amount,
           lc.started_at AS last_call_at, lc.sentiment AS last_call_sentiment
    FROM companies co LEFT JOIN last_call lc ON lc.company_id = co.id"""


def test_customer_360_matches_source(landing: Landing, snowflake: EmbeddedSnowflakeResource) -> None:
    metadata = materialize_model("customer_360", snowflake)
    expected = by_key(source_rows(landing.dsn, CUSTOMER_360_SQL), "company_id")
    actual = by_key(warehouse_rows(snowflake, "SELECT * FROM SOPHIA.ANALYTICS.CUSTOMER_360"), "company_id")
    assert metadata["dagster/row_count"] == len(actual)
    assert actual.keys() == expected.keys()
    assert not set(landing.deleted["companies"]) & {key for (key,) in actual}
    for key, row in expected.items():
        assert {name: actual[key][name] for name in row} == row, key
    assert sum(row["last_call_at"] is not None for row in actual.values()) > len(actual) // 2


def test_call_activity_matches_source(landing: Landing, snowflake: EmbeddedSnowflakeResource) -> None:
    metadata = materialize_model("call_activity", snowflake)
    expected = by_key(
        source_rows(
            landing.dsn,
            """
        SELECT c.id::text AS call_id, (c.started_at AT TIME ZONE 'UTC')::date AS call_date, c.contact_id,
               ct.company_id, c.deal_id, d.owner AS deal_owner, d.stage AS deal_stage, c.duration_seconds,
               length(c.transcript) AS transcript_chars, cardinality(c.tags) AS tag_count, c.sentiment,
               c.transcript
        FROM calls c LEFT JOIN contacts ct ON ct.id = c.contact_id LEFT JOIN deals d ON d.id = c.deal_id""",
        ),
        "call_id",
    )
    actual = by_key(warehouse_rows(snowflake, "SELECT * FROM SOPHIA.ANALYTICS.CALL_ACTIVITY"), "call_id")
    assert metadata["dagster/row_count"] == len(actual) == len(expected)
    for key, row in expected.items():
        assert {name: actual[key][name] for name in row} == row, key
    assert any(row["deal_owner"] is None for row in actual.values())


def test_source_freshness_matches_source(landing: Landing, snowflake: EmbeddedSnowflakeResource) -> None:
    metadata = materialize_model("source_freshness", snowflake)
    actual = by_key(warehouse_rows(snowflake, "SELECT * FROM SOPHIA.ANALYTICS.SOURCE_FRESHNESS"), "source_table")
    assert metadata["dagster/row_count"] == len(TABLES)
    for table in TABLES:
        [source] = source_rows(landing.dsn, f"SELECT count(*) AS n FROM {table}")
        assert (actual[(table,)]["live_rows"], actual[(table,)]["deleted_rows"]) == (
            source["n"],
            len(landing.deleted[table]),
        )
        assert actual[(table,)]["last_published_at"] == landing.last_published[table]


def test_materialization_reports_columns_and_row_count(landing: Landing, snowflake: EmbeddedSnowflakeResource) -> None:
    metadata = materialize_model("deal_pipeline", snowflake)
    columns = [(column.name, column.type) for column in metadata["dagster/column_schema"].columns]
    assert [name for name, _ in columns] == [
        "STAGE",
        "OWNER",
        "IS_OPEN",
        "DEAL_COUNT",
        "TOTAL_AMOUNT",
        "WEIGHTED_AMOUNT",
        "AVG_PROBABILITY",
        "LAST_UPDATED_AT",
    ]
    assert dict(columns)["IS_OPEN"] == "BOOLEAN" and dict(columns)["LAST_UPDATED_AT"].startswith("TIMESTAMP")
    [count] = warehouse_rows(snowflake, "SELECT COUNT(*) AS N FROM SOPHIA.ANALYTICS.DEAL_PIPELINE")
    assert metadata["dagster/row_count"] == count["n"]
    assert metadata["dagster/table_name"] == "SOPHIA.ANALYTICS.DEAL_PIPELINE"


def test_a_source_delete_shows_after_the_next_materialize(
    landing: Landing, snowflake: EmbeddedSnowflakeResource
) -> None:
    """Local models are tables: they change on materialize, not before; a delete at the source drops the deal."""
    materialize_model("deal_pipeline", snowflake)
    [victim] = source_rows(
        landing.dsn,
        "DELETE FROM deals WHERE id = (SELECT min(id) FROM deals) "
        "RETURNING id, stage, owner, to_jsonb(deals)::text AS document",
    )
    published = landing.last_published["deals"] + timedelta(minutes=5)
    document = {**json.loads(victim["document"]), "_meta": {"op": "d"}}
    with snowflake.get_connection() as conn:
        conn.cursor().execute(
            "UPDATE SOPHIA.RAW.DEALS SET FLOW_DOCUMENT = PARSE_JSON(%s), FLOW_PUBLISHED_AT = %s WHERE ID = %s",
            (json.dumps(document), published, victim["id"]),
        )
    landing.deleted["deals"].append(victim["id"])
    landing.last_published["deals"] = published
    query = (
        f"SELECT DEAL_COUNT FROM SOPHIA.ANALYTICS.DEAL_PIPELINE "
        f"WHERE STAGE = '{victim['stage']}' AND OWNER = '{victim['owner']}'"
    )
    [before] = warehouse_rows(snowflake, query)
    [source] = source_rows(
        landing.dsn,
        f"SELECT count(*) AS n FROM deals WHERE stage = '{victim['stage']}' AND owner = '{victim['owner']}'",
    )
    assert before["deal_count"] == source["n"] + 1
    materialize_model("deal_pipeline", snowflake)
    assert warehouse_rows(snowflake, query) == [{"deal_count": source["n"]}]

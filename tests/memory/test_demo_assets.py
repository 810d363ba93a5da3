"""The memory demo assets end to end in `local`, and the resources each environment gets."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import dagster as dg
import pytest

from sophia_dagster.config import Settings
from sophia_dagster.defs import memory as memory_defs
from sophia_dagster.memory.l3_pgvector import PgVectorKnowledgeStore
from sophia_dagster.memory.l3_snowflake import SnowflakeKnowledgeStore
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.memory.resources import memory_resources
from sophia_dagster.postgres_source import SourcePostgres
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource
from tests.conftest import DemoRun
from tests.memory.conftest import free_port

KEYS = {
    "l1_io_manager",
    "l2_io_manager",
    "l3_io_manager",
    "l4_io_manager",
    "tiered_io_manager",
    "cortex",
}


def test_definitions_load_without_warnings_or_connections(embedded_state_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        defs = memory_defs.memory()
        resources = memory_resources(Settings(state_dir=embedded_state_dir, redis_url="redis://127.0.0.1:1/0"))
    assert {asset.key.to_user_string() for asset in defs.assets} == {
        "memory/knowledge/call_transcripts",
        "memory/conversations/contact_context",
        "memory/hot/deal_pipeline",
        "memory/hot/pipeline_totals",
    }
    assert set(resources) == KEYS
    assert isinstance(resources["l3_io_manager"].store, PgVectorKnowledgeStore)
    assert resources["cortex"].available is False


def test_prod_resources_keep_secrets_out_of_config(monkeypatch: pytest.MonkeyPatch) -> None:
    canaries = {
        "REDIS_URL": "redis://:canary-redis-pw@cache.internal:6379/0",
        "POSTGRES_DSN": "postgresql://app:canary-pg-pw@db.internal/sophia",
    }
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        environment="prod",
        redis_url=canaries["REDIS_URL"],
        postgres_dsn=canaries["POSTGRES_DSN"],
        snowflake_account="acme-xy123",
        snowflake_user="svc",
        snowflake_pat="canary-snowflake-pat",
        estuary_api_token="canary-estuary",
    )
    resources = memory_resources(settings)
    assert set(resources) == KEYS
    assert isinstance(resources["l3_io_manager"].store, SnowflakeKnowledgeStore)
    assert resources["cortex"].available is True
    assert resources["l1_io_manager"].store.url == dg.EnvVar("REDIS_URL")
    assert resources["l2_io_manager"].store.postgres.dsn == dg.EnvVar("POSTGRES_DSN")
    shown = repr(resources)
    assert "url='REDIS_URL'" in shown and "dsn='POSTGRES_DSN'" in shown
    for secret in ("canary-redis-pw", "canary-pg-pw", "canary-snowflake-pat"):
        assert secret not in shown


@pytest.mark.timeout(900)  # may be the first test to ask for the shared demo
def test_demo_assets_read_the_warehouse_and_materialize_on_the_tiers(
    demo_run: DemoRun, redis_url: str, key_prefix: str
) -> None:
    """Over the demo's warehouse (raw tables and models), not the source: the counts still match the source."""
    assert demo_run.result.returncode == 0, demo_run.result.stderr[-3_000:]
    settings = Settings(state_dir=demo_run.state_dir, redis_url=redis_url)
    resources = {
        **memory_resources(settings, redis_prefix=key_prefix),
        "snowflake": embedded_snowflake_resource(demo_run.state_dir),
    }
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(list(memory_defs.memory().assets), resources=resources, instance=instance)
    assert result.success
    upstream = {dep.asset_key for asset in memory_defs.memory().assets for spec in asset.specs for dep in spec.deps}
    assert upstream and all(key.path[0] in ("snowflake", "memory") for key in upstream)

    source = SourcePostgres(state_dir=str(demo_run.state_dir))
    with source.connect() as conn:
        calls, transcript, call_id = conn.execute(
            "SELECT (SELECT count(*) FROM calls), transcript, id::text FROM calls ORDER BY id LIMIT 1"
        ).fetchone()
        contacts = conn.execute("SELECT count(DISTINCT contact_id) FROM conversations").fetchone()[0]
        open_deals = conn.execute(
            "SELECT count(*) FROM deals WHERE stage NOT IN ('closed_won', 'closed_lost')"
        ).fetchone()[0]

    def metadata(key: dg.AssetKey) -> dict[str, object]:
        node = memory_defs.memory().get_assets_def(key).node_def.name
        return {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}

    assert metadata(memory_defs.KNOWLEDGE)["memory/documents"] == calls
    hits = resources["l3_io_manager"].store.search(transcript, limit=1)
    assert hits[0].id == call_id and hits[0].score > 0.99
    assert metadata(memory_defs.CONTEXT)["memory/documents"] == contacts
    context = resources["l2_io_manager"].store.read(_ref(memory_defs.CONTEXT)).value
    assert all(0 < len(row["messages"]) <= memory_defs.CONTEXT_MESSAGES for row in context)
    assert metadata(memory_defs.PIPELINE)["memory/cached_in"] == "L1 redis"
    totals = resources["l1_io_manager"].store.read(_ref(memory_defs.TOTALS)).value
    assert sum(stage["deals"] for stage in totals["stages"].values()) == open_deals
    messages = [record.user_message for record in instance.all_logs(result.run_id)]
    assert "asset memory/hot/deal_pipeline read from L1 redis" in messages


def _ref(key: dg.AssetKey) -> OutputRef:
    return OutputRef(tuple(key.path))


def test_the_local_memory_graph_runs_without_redis_with_a_warning(demo_run: DemoRun) -> None:
    settings = Settings(state_dir=demo_run.state_dir, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    resources = {
        **memory_resources(settings, redis_prefix="no-redis"),
        "snowflake": embedded_snowflake_resource(demo_run.state_dir),
    }
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(list(memory_defs.memory().assets), resources=resources, instance=instance)
    assert result.success
    node = memory_defs.memory().get_assets_def(memory_defs.TOTALS).node_def.name
    assert result.asset_materializations_for_node(node)[0].metadata["memory/tier"].value == "none"
    warned = [record.user_message for record in instance.all_logs(result.run_id) if record.level == logging.WARNING]
    assert any("L1 redis skipped, the value is not kept" in message for message in warned)
    assert any("memory cache degraded" in message for message in warned)


def test_outside_local_an_unreachable_redis_still_fails_the_l1_step() -> None:
    settings = Settings(
        environment="dev",
        snowflake_account="acme-dev",
        snowflake_user="svc",
        snowflake_password="pw",
        estuary_api_token="t",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    assert memory_resources(settings)["l1_io_manager"].optional is False

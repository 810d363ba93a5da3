"""The memory tiers' Dagster resources for an environment, built from Settings (nothing connects here)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import dagster as dg

from sophia_dagster.config import Settings
from sophia_dagster.memory.conversations import ConversationStore
from sophia_dagster.memory.l1_redis import RedisIOManager, RedisStore
from sophia_dagster.memory.l2_postgres import DocumentStore, PostgresIOManager
from sophia_dagster.memory.l3_pgvector import PgVectorKnowledgeStore
from sophia_dagster.memory.l3_snowflake import SnowflakeKnowledgeStore
from sophia_dagster.memory.l3_vectors import KnowledgeIOManager, KnowledgeStore
from sophia_dagster.memory.l4_warehouse import WarehouseIOManager, WarehouseStore
from sophia_dagster.memory.l5_cortex import CortexResource
from sophia_dagster.memory.service import UnifiedMemoryService
from sophia_dagster.memory.tiered import TieredIOManager
from sophia_dagster.postgres_source import SourcePostgres, source_postgres
from sophia_dagster.warehouse.resources import snowflake_resource

CODE_LOCATION = "sophia_dagster"
REDIS_PREFIX = "sophia:memory"


def redis_url(settings: Settings) -> str | dg.EnvVar | None:
    """The Redis URL as resource config: by variable name when it carries a password, so the UI never shows it."""
    if settings.redis_url is None:
        return None
    url = settings.redis_url.get_secret_value()
    return dg.EnvVar("REDIS_URL") if urlsplit(url).password else url


def knowledge_store(settings: Settings, postgres: SourcePostgres) -> KnowledgeStore:
    """pgvector with the hashing embedding in local; Snowflake VECTOR + Cortex embeddings in dev/prod."""
    if settings.environment == "local":
        return PgVectorKnowledgeStore(postgres=postgres)
    return SnowflakeKnowledgeStore(snowflake=snowflake_resource(settings))


def memory_resources(settings: Settings, redis_prefix: str = REDIS_PREFIX) -> dict[str, Any]:
    """Resources `l1_io_manager` ... `l4_io_manager`, `tiered_io_manager` (L1 over L4) and `cortex`."""
    postgres, snowflake = source_postgres(settings), snowflake_resource(settings)
    cache = RedisStore(url=redis_url(settings), code_location=CODE_LOCATION, prefix=redis_prefix)
    warehouse = WarehouseStore(snowflake=snowflake)
    return {
        "l1_io_manager": RedisIOManager(store=cache, optional=settings.environment == "local"),
        "l2_io_manager": PostgresIOManager(store=DocumentStore(postgres=postgres)),
        "l3_io_manager": KnowledgeIOManager(store=knowledge_store(settings, postgres)),
        "l4_io_manager": WarehouseIOManager(store=warehouse),
        "tiered_io_manager": TieredIOManager(cache=cache, durable=warehouse),
        "cortex": CortexResource(snowflake=snowflake, available=settings.environment != "local"),
    }


def memory_service(settings: Settings, allow_degraded: bool = True) -> UnifiedMemoryService:
    """A `UnifiedMemoryService` on the tiers of `settings.environment`, for application code."""
    dsn = settings.postgres_dsn.get_secret_value() if settings.postgres_dsn is not None else None
    postgres, snowflake = SourcePostgres(dsn=dsn, state_dir=str(settings.state_dir)), snowflake_resource(settings)
    url = settings.redis_url.get_secret_value() if settings.redis_url is not None else None
    return UnifiedMemoryService(
        knowledge=knowledge_store(settings, postgres),
        conversations=ConversationStore(postgres=postgres),
        warehouse=snowflake,
        cortex=CortexResource(snowflake=snowflake, available=settings.environment != "local"),
        cache=RedisStore(url=url, code_location=CODE_LOCATION) if url else None,
        allow_degraded=allow_degraded,
    )

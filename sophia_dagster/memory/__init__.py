"""The memory tiers of Sophia's AI side as Dagster IO managers, plus the application-facing service.

L1 Redis (cache with TTL), L2 PostgreSQL documents, L3 vector knowledge (pgvector locally, Snowflake
VECTOR + Cortex embeddings in prod), L4 warehouse tables, a tiered write-through IO manager, L5 Cortex
functions as a resource, and `UnifiedMemoryService` for application code.
"""

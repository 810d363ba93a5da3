"""L2 PostgreSQL IO manager vs a raw COPY, measured in one run on 100,000 JSON documents.

Subject: `PostgresIOManager.handle_output` (JSON encode, manifest upsert, partition delete, COPY into
`documents`, one transaction). Baseline: psycopg `COPY` of the same documents, each `json.dumps`-ed,
into a table of (position, doc jsonb), truncated first. Samples alternate; the ratio of medians is the
figure. Uses POSTGRES_DSN (default: the machine's PostgreSQL, db `test`) in a throwaway schema, dropped
afterwards.
"""

from __future__ import annotations

import json
import os
import statistics
import timeit
import uuid

import dagster as dg
import psycopg

from sophia_dagster.memory.l2_postgres import DocumentStore, PostgresIOManager
from sophia_dagster.postgres_source import SourcePostgres

DOCUMENTS = 100_000
SAMPLES = 5


def _documents() -> list[dict[str, object]]:
    return [
        {
            "contact_id": i % 1_500,
            "role": "user" if i % 2 else "assistant",
            "text": f"message {i} about renewal pricing and onboarding",
            "meta": {"channel": "chat", "score": i % 5},
        }
        for i in range(DOCUMENTS)
    ]


def main() -> None:
    """Print the median time of each path and their ratio."""
    dsn = os.environ.get("POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bench_l2_{uuid.uuid4().hex[:8]}"
    docs = _documents()
    manager = PostgresIOManager(store=DocumentStore(postgres=SourcePostgres(dsn=dsn), schema_name=schema))
    key = dg.AssetKey(["bench", "documents"])
    output_contexts = iter([dg.build_output_context(asset_key=key) for _ in range(SAMPLES + 1)])  # built untimed

    def subject() -> None:
        manager.handle_output(next(output_contexts), docs)

    def baseline() -> None:
        with psycopg.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(f"TRUNCATE {schema}.raw_documents")
            with cur.copy(f"COPY {schema}.raw_documents (position, doc) FROM STDIN") as copy:
                for position, doc in enumerate(docs):
                    copy.write_row((position, json.dumps(doc)))

    try:
        subject()
        with psycopg.connect(dsn) as conn:
            conn.execute(f"CREATE TABLE {schema}.raw_documents (position bigint PRIMARY KEY, doc jsonb NOT NULL)")
        baseline()
        timings: dict[str, list[float]] = {"subject": [], "baseline": []}
        for _ in range(SAMPLES):
            timings["subject"].append(timeit.timeit(subject, number=1))
            timings["baseline"].append(timeit.timeit(baseline, number=1))
        with psycopg.connect(dsn) as conn:
            stored = conn.execute(f"SELECT count(*) FROM {schema}.documents").fetchone()[0]
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    assert stored == DOCUMENTS, f"expected {DOCUMENTS} documents after {SAMPLES + 1} overwrites, found {stored}"
    subject_median, baseline_median = statistics.median(timings["subject"]), statistics.median(timings["baseline"])
    print(f"{DOCUMENTS:,} JSON documents; median of {SAMPLES}; partition overwritten each time ({stored:,} rows kept)")
    print(f"PostgresIOManager handle_output : {subject_median:.3f} s ({DOCUMENTS / subject_median:,.0f} docs/s)")
    print(f"raw COPY of json.dumps(doc)    : {baseline_median:.3f} s ({DOCUMENTS / baseline_median:,.0f} docs/s)")
    print(f"ratio IO manager / raw COPY     : {subject_median / baseline_median:.2f}x")


if __name__ == "__main__":
    main()

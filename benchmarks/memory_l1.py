"""L1 Redis IO manager vs raw redis-py, measured in one run on a 1,000,000-row table.

Subject: `RedisIOManager.handle_output` + `load_input` (Arrow IPC encode, chunked MULTI/EXEC write with a
manifest, MGET read, reassembly, decode). Baseline: redis-py `SET` + `GET` of the very same Arrow IPC
bytes as one value. Samples alternate so machine noise hits both alike; the ratio of medians is the
figure. Uses REDIS_URL (default redis://127.0.0.1:6379/0) under a throwaway key prefix, removed after.
"""

from __future__ import annotations

import os
import statistics
import timeit
import uuid

import dagster as dg
import numpy as np
import pyarrow as pa
import redis

from sophia_dagster.memory.codec import table_to_ipc
from sophia_dagster.memory.l1_redis import RedisIOManager, RedisStore

ROWS = 1_000_000
SAMPLES = 5


def _table() -> pa.Table:
    rng = np.random.default_rng(7)
    return pa.table(
        {
            "id": np.arange(ROWS, dtype=np.int64),
            "amount": rng.random(ROWS),
            "stage": pa.array(rng.choice(["proposal", "negotiation", "closed_won"], ROWS)),
            "probability": rng.integers(0, 100, ROWS, dtype=np.int32),
        }
    )


def main() -> None:
    """Print the median time of each path and their ratio."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench-l1-{uuid.uuid4().hex[:8]}"
    table = _table()
    client = redis.Redis.from_url(url)
    manager = RedisIOManager(store=RedisStore(url=url, prefix=prefix))
    key = dg.AssetKey(["bench", "hot_table"])
    input_context = dg.build_input_context(asset_key=key, upstream_output=dg.build_output_context(asset_key=key))
    output_contexts = iter([dg.build_output_context(asset_key=key) for _ in range(SAMPLES + 1)])  # built untimed

    def subject() -> None:
        manager.handle_output(next(output_contexts), table)
        assert manager.load_input(input_context).num_rows == ROWS

    def baseline() -> None:
        client.set(f"{prefix}:raw", table_to_ipc(table))
        assert len(client.get(f"{prefix}:raw")) > 0

    data = table_to_ipc(table)

    def raw_only() -> None:
        client.set(f"{prefix}:raw", data)
        assert len(client.get(f"{prefix}:raw")) == len(data)

    try:
        subject(), baseline(), raw_only()
        timings: dict[str, list[float]] = {"subject": [], "baseline": [], "raw": []}
        for _ in range(SAMPLES):
            timings["subject"].append(timeit.timeit(subject, number=1))
            timings["baseline"].append(timeit.timeit(baseline, number=1))
            timings["raw"].append(timeit.timeit(raw_only, number=1))
    finally:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(f"table: {ROWS:,} rows, {len(data) / 1e6:.1f} MB as Arrow IPC; median of {SAMPLES}")
    print(f"RedisIOManager handle_output + load_input : {medians['subject']:.3f} s")
    print(f"redis-py SET + GET, IPC encode included   : {medians['baseline']:.3f} s")
    print(f"redis-py SET + GET of ready-made bytes    : {medians['raw']:.3f} s")
    print(f"ratio IO manager / (encode + SET + GET)   : {medians['subject'] / medians['baseline']:.2f}x")
    print(f"ratio IO manager / (SET + GET only)       : {medians['subject'] / medians['raw']:.2f}x")


if __name__ == "__main__":
    main()

"""Benchmark: one Estuary activity-sensor tick over 1,000 tasks vs. 10 tasks, against the fake control plane.

Prints the requests each tick made and its wall time, and the 1,000/10 ratios. The fake answers with a
fixed latency per request (like a network round trip), so the ratio shows how the tick scales: requests
grow with ceil(N/100), not N. Run: ``.venv/bin/python benchmarks/estuary_sensor.py``.
"""

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sophia_dagster.estuary.catalog import load_catalog
from sophia_dagster.estuary.sensors import build_estuary_sensor
from sophia_dagster.estuary.workspace import EstuaryWorkspace
from tests.fakes.estuary_server import FakeEstuary

LATENCY_SECONDS = 0.02
BINDINGS_PER_TASK = 2


def write_catalog(directory: Path, tasks: int) -> None:
    """Half captures (two tables each), half materializations of those collections."""
    captures, collections, materializations = {}, {}, {}
    for i in range(tasks // 2):
        names = [f"bench/src-{i}/t{b}" for b in range(BINDINGS_PER_TASK)]
        captures[f"bench/src-{i}"] = {
            "endpoint": {
                "connector": {"image": "ghcr.io/estuary/source-postgres:v3", "config": {"address": "db:5432"}}
            },
            "bindings": [
                {"resource": {"namespace": "public", "stream": f"t{i}_{b}"}, "target": n} for b, n in enumerate(names)
            ],
        }
        for name in names:
            collections[name] = {
                "key": ["/id"],
                "schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
            }
        materializations[f"bench/wh-{i}"] = {
            "endpoint": {
                "connector": {
                    "image": "ghcr.io/estuary/materialize-snowflake:v4",
                    "config": {"database": "DB", "schema": "RAW"},
                }
            },
            "bindings": [{"resource": {"table": n.replace("/", "_")}, "source": n} for n in names],
        }
    catalog = {"captures": captures, "collections": collections, "materializations": materializations}
    (directory / "bench.flow.yaml").write_text(yaml.safe_dump(catalog))


def seed(fake: FakeEstuary, tasks: list[str], collections_of: dict[str, list[str]]) -> None:
    """Every task live, with activity on every binding this hour."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for task in tasks:
        fake.add_live(task, "materialization" if "/wh-" in task else "capture", {"endpoint": {}})
        fake.add_stats(task, hour, bindings={c: (10, 1000) for c in collections_of[task]})


def one_tick(tasks: int) -> tuple[int, float, int]:
    """Requests, wall seconds and asset events of one sensor evaluation over ``tasks`` tasks."""
    with tempfile.TemporaryDirectory() as tmp, FakeEstuary() as fake:
        write_catalog(Path(tmp), tasks)
        catalog = load_catalog(tmp)
        seed(fake, list(catalog.tasks), {t: catalog.collections_of(t) for t in catalog.tasks})
        workspace = EstuaryWorkspace(api_token=fake.issue_refresh_token(), catalog_path=tmp, **fake.urls())
        sensor = build_estuary_sensor(catalog)
        fake.latency_seconds = LATENCY_SECONDS
        with dg.build_sensor_context(resources={"estuary": workspace}) as context:
            started = time.perf_counter()
            result = sensor.evaluate_tick(context)
            elapsed = time.perf_counter() - started
        return len(fake.requests), elapsed, len(result.asset_events)


def main() -> None:
    one_tick(10)  # warm up lazy imports so neither measurement pays for them
    small, large = one_tick(10), one_tick(1000)
    for n, (requests, seconds, events) in ((10, small), (1000, large)):
        print(f"{n:>5} tasks: {requests:>3} requests, {seconds * 1000:8.1f} ms, {events:>5} asset events")
    requests_ratio, time_ratio = large[0] / small[0], large[1] / small[1]
    print(f"ratio 1000/10 tasks (100x the tasks): requests x{requests_ratio:.1f}, wall time x{time_ratio:.1f}")
    print(f"(fake answers with {LATENCY_SECONDS * 1000:.0f} ms latency per request; includes one token exchange)")


if __name__ == "__main__":
    main()

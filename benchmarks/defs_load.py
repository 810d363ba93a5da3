"""How long loading the code location takes, against `import dagster` alone, measured in one run.

Each sample is a fresh interpreter (what `dagster dev`, the CLI and every run worker pay). Samples of
the commands alternate so that machine noise hits all alike; the ratios of medians are the figures.
A third command imports only the libraries the definitions need, so that what is ours shows apart
from what our dependencies cost (dagster-snowflake alone pulls in snowflake.core and snowpark).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

SAMPLES = 7
BASELINE = "import dagster"
DEPENDENCIES = "import dagster, dagster_snowflake, pandas, psycopg, redis, sqlglot, pyarrow, httpx"
SUBJECT = "from sophia_dagster.definitions import defs\nd = defs()\nd.get_repository_def().get_all_jobs()\n"


def _seconds(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def main() -> None:
    """Print the median of each and their ratio."""
    _seconds(SUBJECT)
    samples: dict[str, list[float]] = {BASELINE: [], DEPENDENCIES: [], SUBJECT: []}
    for _ in range(SAMPLES):
        for code, times in samples.items():
            times.append(_seconds(code))
    base, deps, load = (statistics.median(times) for times in samples.values())
    print(f"import dagster               median {base:.3f} s over {SAMPLES} fresh interpreters")
    print(f"import the libraries we use  median {deps:.3f} s")
    print(f"load sophia definitions      median {load:.3f} s")
    print(f"ratio definitions / import dagster: {load / base:.2f}x")
    print(f"ratio definitions / import of our libraries: {load / deps:.2f}x (ours alone: {load - deps:.3f} s)")


if __name__ == "__main__":
    main()

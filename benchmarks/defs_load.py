"""How long loading the code location takes, against `import dagster` alone, measured in one run.

Each sample is a fresh interpreter (what `dagster dev`, the CLI and every run worker pay). Samples of
the two commands alternate so that machine noise hits both alike; the ratio of medians is the figure.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

SAMPLES = 7
BASELINE = "import dagster"
SUBJECT = (
    "from sophia_dagster.definitions import defs\n"
    "d = defs()\n"
    "d.get_repository_def().get_all_jobs()\n"
)


def _seconds(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def main() -> None:
    """Print the median of each and their ratio."""
    _seconds(SUBJECT)
    baseline, subject = [], []
    for _ in range(SAMPLES):
        baseline.append(_seconds(BASELINE))
        subject.append(_seconds(SUBJECT))
    base, load = statistics.median(baseline), statistics.median(subject)
    print(f"import dagster          median {base:.3f} s over {SAMPLES} fresh interpreters")
    print(f"load sophia definitions median {load:.3f} s over {SAMPLES} fresh interpreters")
    print(f"ratio definitions / import dagster: {load / base:.2f}x (our own share: {load - base:.3f} s)")


if __name__ == "__main__":
    main()

"""A live status line for a streaming run: changes per second, lag, and rows per table so far."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from sophia_dagster.estuary.local.pipeline import RunReport


def status_line(report: RunReport, rate: float) -> str:
    """``1,234 changes/s | lag 0 B | deals +1200 ~3 -1 | ...`` (inserted, updated, deleted per table)."""
    tables = " | ".join(
        f"{collection.rsplit('/', 1)[-1]} +{c['inserted']} ~{c['updated']} -{c['deleted']}"
        for collection, c in sorted(report.counts.items())
    )
    lag = f"lag {report.lag_bytes:,} B" if report.source_lsn else "lag -"
    return f"{rate:,.0f} changes/s | {lag}" + (f" | {tables}" if tables else "")


class LiveStatus:
    """Prints :func:`status_line` every ``interval`` seconds while a run fills ``report`` (rewritten in place on
    a terminal, one line per interval otherwise)."""

    def __init__(self, report: RunReport, stream: TextIO = sys.stderr, interval: float = 1.0) -> None:
        self.report, self.stream, self.interval = report, stream, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sophia-flow-status", daemon=True)

    def __enter__(self) -> LiveStatus:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.stream.isatty():
            self.stream.write("\n")

    def _loop(self) -> None:
        last_total, last_at = 0, time.monotonic()
        while not self._stop.wait(self.interval):
            total, now = sum(self.report.totals().values()), time.monotonic()
            line = status_line(self.report, (total - last_total) / max(now - last_at, 1e-6))
            last_total, last_at = total, now
            self.stream.write(f"\r\033[K{line}" if self.stream.isatty() else line + "\n")
            self.stream.flush()

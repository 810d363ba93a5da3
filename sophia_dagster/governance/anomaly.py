"""Volume anomalies: a table's daily change volume against a baseline learned from its own history.

The baseline is the table's volumes on earlier days (one per UTC day: the last measured that day) within
the look-back window. The score is the robust z-score ``0.6745 * (x - median) / MAD``; when MAD is 0
(a perfectly regular table) the mean absolute deviation stands in (scaled by 1.2533), and when that is 0
too any change from the median is an anomaly. Until ``min_days`` earlier days are known the check is
"learning (n of 14 days)" and passes.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

MAD_SCALE = 0.6745
MEAN_AD_SCALE = 1.2533


@dataclass(frozen=True)
class VolumeVerdict:
    """The outcome of scoring one day's volume."""

    volume: int
    history_days: int
    median: float | None
    mad: float | None
    z_score: float | None
    anomalous: bool
    learning: bool

    def summary(self, min_days: int) -> str:
        """One line for people."""
        if self.learning:
            return f"learning ({self.history_days} of {min_days} days)"
        state = "anomalous" if self.anomalous else "normal"
        return f"{state}: {self.volume} rows changed vs median {self.median:g} (robust z {self.z_score:+.2f})"


def daily_baseline(history: Iterable[tuple[date, int]], today: date, window_days: int) -> list[int]:
    """One volume per earlier day within ``window_days`` of ``today``: the last one recorded that day."""
    by_day: dict[date, int] = {}
    for day, volume in history:
        if 0 < (today - day).days <= window_days:
            by_day[day] = volume
    return list(by_day.values())


def robust_z(value: float, baseline: list[int]) -> tuple[float, float, float]:
    """``(z, median, MAD)`` of ``value`` against ``baseline``."""
    median = statistics.median(baseline)
    mad = statistics.median(abs(v - median) for v in baseline)
    if mad > 0:
        return MAD_SCALE * (value - median) / mad, median, mad
    mean_ad = statistics.fmean(abs(v - median) for v in baseline)
    if mean_ad > 0:
        return (value - median) / (MEAN_AD_SCALE * mean_ad), median, mad
    return (0.0 if value == median else float("inf") if value > median else float("-inf")), median, mad


def score(
    volume: int, history: Iterable[tuple[date, int]], today: date, threshold: float, min_days: int, window_days: int
) -> VolumeVerdict:
    """Score ``volume`` (rows changed in the last 24 h) against the table's earlier days.

    Args:
        volume: today's change volume.
        history: ``(day, volume)`` pairs from earlier check results (any order, repeats allowed).
        today: the UTC day being judged (it is excluded from the baseline).
        threshold: |robust z| beyond which the volume is anomalous.
        min_days: earlier days needed before judging.
        window_days: how far back the baseline looks.

    Example:
        >>> score(1000, [(date(2026, 1, d), 100) for d in range(1, 15)], date(2026, 1, 15), 3.5, 14, 28).anomalous
        True
    """
    baseline = daily_baseline(history, today, window_days)
    if len(baseline) < min_days:
        return VolumeVerdict(volume, len(baseline), None, None, None, False, True)
    z, median, mad = robust_z(volume, baseline)
    return VolumeVerdict(volume, len(baseline), median, mad, z, abs(z) > threshold, False)

"""The health report: every check's latest result, each pipeline's status and lag, the trend against the
previous report, and a PNG of check results and lag over the last 14 days, written under the state directory.

``report_path(state_dir)`` and ``latest_report(state_dir)`` are how other tools (the MCP server) read it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

TREND_DAYS = 14
REPORT_NAME, CHART_NAME, HISTORY_NAME = "health_report.md", "health_report.png", "history.json"
OUTCOMES = ("passed", "WARN", "ERROR")


def report_path(state_dir: Path) -> Path:
    """Where the latest health report is written: ``<state_dir>/governance/health_report.md``."""
    return Path(state_dir) / "governance" / REPORT_NAME


def latest_report(state_dir: Path) -> str | None:
    """The latest health report's markdown, or None when no report was written yet."""
    try:
        return report_path(state_dir).read_text()
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class CheckLine:
    """One check's latest result as the report shows it."""

    label: str
    outcome: str
    summary: str
    next_step: str = ""


@dataclass(frozen=True)
class PipelineLine:
    """One Estuary task's status and the age of its newest write."""

    task: str
    status: str
    lag_seconds: float | None
    last_activity: str = ""
    detail: str = ""


@dataclass
class Snapshot:
    """What one report saw; kept in history.json for trends and the chart."""

    generated_at: str
    outcomes: dict[str, str] = field(default_factory=dict)
    lag_seconds: dict[str, float] = field(default_factory=dict)


def load_history(state_dir: Path) -> list[Snapshot]:
    """Earlier snapshots, oldest first (an unreadable history starts afresh)."""
    try:
        rows = json.loads((report_path(state_dir).parent / HISTORY_NAME).read_text())
        return [Snapshot(**row) for row in rows]
    except (FileNotFoundError, ValueError, TypeError):
        return []


def trend(previous: Snapshot | None, current: Snapshot) -> tuple[list[str], list[str]]:
    """``(new failures, resolved)`` since the previous report."""
    before = previous.outcomes if previous else {}
    new = sorted(k for k, v in current.outcomes.items() if v != "passed" and before.get(k, "passed") == "passed")
    resolved = sorted(k for k, v in before.items() if v != "passed" and current.outcomes.get(k) == "passed")
    return new, resolved


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(
    now: datetime,
    environment: str,
    checks: Sequence[CheckLine],
    pipelines: Sequence[PipelineLine],
    new: Sequence[str],
    resolved: Sequence[str],
    previous_at: str | None,
) -> str:
    """The report's markdown."""
    counts = {o: sum(c.outcome == o for c in checks) for o in OUTCOMES}
    missing = sum(c.outcome not in OUTCOMES for c in checks)
    lines = [
        f"# Sophia platform health: {now:%Y-%m-%d %H:%M} UTC ({environment})",
        "",
        f"**{counts['passed']} passed, {counts['WARN']} warnings, {counts['ERROR']} errors**"
        + (f", {missing} not run yet" if missing else ""),
        "",
        f"![check results and lag, last {TREND_DAYS} days]({CHART_NAME})",
        "",
        f"## Since the previous report ({previous_at or 'none'})",
        "",
        "New failures: " + (", ".join(new) if new else "none"),
        "",
        "Resolved: " + (", ".join(resolved) if resolved else "none"),
        "",
        "## Pipelines",
        "",
        "| task | status | newest table write | last activity in stats | detail |",
        "|---|---|---|---|---|",
        *(
            f"| {p.task} | {p.status} | {_age(p.lag_seconds)} | {p.last_activity} | {_cell(p.detail)} |"
            for p in pipelines
        ),
        "",
        "## Checks",
        "",
        "| check | result | summary | next step |",
        "|---|---|---|---|",
        *(
            f"| {_cell(c.label)} | {c.outcome} | {_cell(c.summary)} | {_cell(c.next_step)} |"
            for c in sorted(
                checks, key=lambda c: (OUTCOMES[::-1].index(c.outcome) if c.outcome in OUTCOMES else 3, c.label)
            )
        ),
        "",
    ]
    return "\n".join(lines)


def daily(history: Sequence[Snapshot]) -> list[tuple[date, Snapshot]]:
    """The last snapshot of each UTC day, oldest first."""
    by_day = {datetime.fromisoformat(s.generated_at).date(): s for s in history}
    return sorted(by_day.items())


def draw_chart(history: Sequence[Snapshot], path: Path) -> None:
    """A PNG: check outcomes per day (stacked bars) and the largest table lag per day (line), last 14 days."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    days = daily(history)
    x = [day for day, _ in days]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    base = [0] * len(days)
    for outcome, colour in zip(OUTCOMES, ("#2e7d32", "#f9a825", "#c62828"), strict=True):
        heights = [sum(v == outcome for v in s.outcomes.values()) for _, s in days]
        top.bar(x, heights, bottom=base, width=0.8, color=colour, label=outcome)
        base = [b + h for b, h in zip(base, heights, strict=True)]
    top.set_ylabel("checks")
    top.legend(loc="lower left", fontsize=8)
    top.set_title(f"Check results and largest table lag, last {TREND_DAYS} days (last report of each day)")
    bottom.plot(x, [max(s.lag_seconds.values(), default=0) / 3600 for _, s in days], marker="o", color="#1565c0")
    bottom.set_ylabel("largest lag (h)")
    bottom.set_xlim(x[-1] - timedelta(days=TREND_DAYS), x[-1] + timedelta(days=1))
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def write_report(
    state_dir: Path,
    environment: str,
    checks: Sequence[CheckLine],
    pipelines: Sequence[PipelineLine],
    lag_seconds: Mapping[str, float],
    now: datetime | None = None,
) -> str:
    """Write the report, its chart and the history under ``<state_dir>/governance``; return the markdown.

    Args:
        state_dir: the platform's state directory.
        environment: shown in the title.
        checks: every check's latest result.
        pipelines: every Estuary task's status and lag.
        lag_seconds: the age of the newest write per warehouse table (charted).
        now: the report's time (defaults to now).

    Example:
        >>> write_report(Path(".sophia"), "local", [CheckLine("t: parity", "passed", "ok")], [], {})
    """
    now = now or datetime.now(UTC)
    folder = report_path(state_dir).parent
    folder.mkdir(parents=True, exist_ok=True)
    history = load_history(state_dir)
    current = Snapshot(now.isoformat(), {c.label: c.outcome for c in checks}, dict(lag_seconds))
    new, resolved = trend(history[-1] if history else None, current)
    cutoff = now - timedelta(days=TREND_DAYS)
    history = [s for s in history if datetime.fromisoformat(s.generated_at) >= cutoff] + [current]
    markdown = render(
        now, environment, checks, pipelines, new, resolved, history[-2].generated_at if len(history) > 1 else None
    )
    draw_chart(history, folder / CHART_NAME)
    (folder / HISTORY_NAME).write_text(json.dumps([asdict(s) for s in history]))
    report_path(state_dir).write_text(markdown)
    return markdown

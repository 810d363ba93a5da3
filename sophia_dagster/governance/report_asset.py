"""The health report asset: reads every governance check's latest result from the instance and writes
the report (markdown in the asset's metadata and under the state directory, with its PNG)."""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from sophia_dagster.governance.history import CheckRecord, latest_results
from sophia_dagster.governance.report import CheckLine, PipelineLine, report_path, write_report
from sophia_dagster.governance.table_checks import VOLUME
from sophia_dagster.governance.task_checks import PIPELINE_HEALTH

REPORT_KEY = dg.AssetKey(["governance", "health_report"])
LAST = {"dagster/priority": "-100"}
"""Steps run in priority order in the governance job's in-process executor: the report goes last."""


def _line(key: dg.AssetCheckKey, record: CheckRecord | None) -> CheckLine:
    label = f"{key.asset_key.to_user_string()}: {key.name}"
    if record is None:
        return CheckLine(label, "not run yet", "")
    return CheckLine(
        label, record.outcome, str(record.metadata.get("summary", "")), str(record.metadata.get("next_step", ""))
    )


def _pipelines(results: dict[dg.AssetCheckKey, CheckRecord], lag: dict[str, float]) -> list[PipelineLine]:
    by_task: dict[str, PipelineLine] = {}
    for key, record in results.items():
        task = record.metadata.get("task")
        if key.name != PIPELINE_HEALTH or not isinstance(task, str) or task in by_task:
            continue
        lags = [v for k, v in lag.items() if k in _task_tables(results, task)]
        by_task[task] = PipelineLine(
            task,
            str(record.metadata.get("status", "")),
            max(lags, default=None),
            str(record.metadata.get("last_activity", "")),
            str(record.metadata.get("summary", "")),
        )
    return [by_task[t] for t in sorted(by_task)]


def _task_tables(results: dict[dg.AssetCheckKey, CheckRecord], task: str) -> set[str]:
    return {
        k.asset_key.to_user_string()
        for k, r in results.items()
        if k.name == PIPELINE_HEALTH and r.metadata.get("task") == task
    }


def build_report_asset(
    check_keys: Sequence[dg.AssetCheckKey], state_dir: Path, environment: str, deps: Sequence[dg.AssetKey] = ()
) -> dg.AssetsDefinition:
    """The report asset over ``check_keys``.

    Args:
        check_keys: every check the report covers.
        state_dir: where ``governance/health_report.md`` and its PNG are written.
        environment: shown in the report's title.
        deps: assets the report runs after (their checks become ready with it, and run first).

    Example:
        >>> build_report_asset(keys, Path(".sophia"), "local", deps=[PLATFORM_KEY])
    """

    @dg.asset(
        key=REPORT_KEY,
        deps=list(deps),
        group_name="governance",
        kinds={"markdown"},
        op_tags=LAST,
        description="Every governance check's latest result, pipeline status and lag, and the trend.",
    )
    def health_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        results = latest_results(context.instance, check_keys)
        lag = {
            k.asset_key.to_user_string(): float(r.metadata["last_write_age_seconds"])
            for k, r in results.items()
            if k.name == VOLUME and isinstance(r.metadata.get("last_write_age_seconds"), int | float)
        }
        checks = [_line(key, results.get(key)) for key in check_keys]
        markdown = write_report(state_dir, environment, checks, _pipelines(results, lag), lag)
        failing = [c.label for c in checks if c.outcome not in ("passed",)]
        context.log.info(f"health report: {len(checks) - len(failing)} of {len(checks)} checks passed")
        return dg.MaterializeResult(
            metadata={
                "report": dg.MetadataValue.md(markdown),
                "path": dg.MetadataValue.path(str(report_path(state_dir).resolve())),
                "checks": len(checks),
                "not_passing": dg.MetadataValue.json(failing),
            }
        )

    return health_report

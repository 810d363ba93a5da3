"""Earlier asset check results, read from the Dagster instance (the checks' own history is their baseline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

COMPLETED = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}


@dataclass(frozen=True)
class CheckRecord:
    """One completed evaluation of an asset check."""

    key: dg.AssetCheckKey
    passed: bool
    severity: str
    timestamp: float
    run_id: str
    metadata: Mapping[str, Any]

    @property
    def label(self) -> str:
        """``asset key: check name``."""
        return f"{self.key.asset_key.to_user_string()}: {self.key.name}"

    @property
    def outcome(self) -> str:
        """``passed``, ``WARN`` or ``ERROR``."""
        return "passed" if self.passed else self.severity


def _record(record: Any) -> CheckRecord | None:
    evaluation = record.event.asset_check_evaluation if record.event else None
    if evaluation is None:
        return None
    metadata = {name: value.value for name, value in evaluation.metadata.items()}
    return CheckRecord(
        record.key, evaluation.passed, evaluation.severity.value, record.event.timestamp, record.run_id, metadata
    )


def check_history(instance: dg.DagsterInstance, key: dg.AssetCheckKey, limit: int = 200) -> list[CheckRecord]:
    """The check's completed evaluations, newest first."""
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=limit, status=COMPLETED)
    return [r for r in map(_record, records) if r is not None]


def latest_results(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey]
) -> dict[dg.AssetCheckKey, CheckRecord]:
    """The latest completed evaluation of each check that has one."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(keys))
    found = {}
    for key, record in latest.items():
        if record.status not in COMPLETED:
            history = check_history(instance, key, limit=1)
            if history:
                found[key] = history[0]
            continue
        parsed = _record(record)
        if parsed is not None:
            found[key] = parsed
    return found

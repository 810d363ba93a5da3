"""Alert sensors: asset check transitions (pass -> fail once, fail -> pass as resolved) and failed runs,
posted to the alert webhook with links into the Dagster UI. Each keeps its state and its unsent alerts in
its cursor, so a webhook that is down delays alerts but never loses or repeats them."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import dagster as dg

from sophia_dagster.governance.alerts import Alert, Outbox, WebhookSender
from sophia_dagster.governance.config import AlertConfig
from sophia_dagster.governance.history import latest_results

WebhookUrl = Callable[[], str | None]
RUN_LOOKBACK = timedelta(hours=1)


def asset_url(ui_url: str, key: dg.AssetKey, checks: bool = False) -> str:
    """The asset's page in the Dagster UI (its checks tab when ``checks``)."""
    path = "/".join(quote(part, safe="") for part in key.path)
    return f"{ui_url.rstrip('/')}/assets/{path}" + ("?view=checks" if checks else "")


def run_url(ui_url: str, run_id: str) -> str:
    """The run's page in the Dagster UI."""
    return f"{ui_url.rstrip('/')}/runs/{run_id}"


def _load(cursor: str | None) -> dict[str, Any]:
    try:
        return json.loads(cursor) if cursor else {}
    except ValueError:
        return {}


def _deliver(
    context: dg.SensorEvaluationContext,
    state: dict[str, Any],
    new: list[Alert],
    webhook_url: WebhookUrl,
    config: AlertConfig,
) -> dg.SensorResult:
    outbox = Outbox([Alert.from_dict(a) for a in state.get("pending", [])])
    url = webhook_url()
    if url is None:
        state["pending"] = []
        return dg.SensorResult(cursor=json.dumps(state), skip_reason="ALERT_WEBHOOK_URL is not set: no alerts sent")
    outbox.add(new)
    sender = WebhookSender(url, config.timeout_seconds, config.max_attempts, config.max_backoff_seconds)
    delivered = outbox.flush(sender, context.log.warning)
    state["pending"] = outbox.to_list()
    reason = f"{delivered} alerts sent, {len(outbox.pending)} waiting"
    return dg.SensorResult(cursor=json.dumps(state), skip_reason=reason)


def check_transitions(previous: dict[str, str], current: dict[dg.AssetCheckKey, Any], ui_url: str) -> list[Alert]:
    """Alerts for checks whose outcome changed: newly failing (or changed severity), or resolved."""
    alerts = []
    for key, record in current.items():
        name = key.to_user_string()
        before, now = previous.get(name, "passed"), record.outcome
        if before == now:
            continue
        resolved = now == "passed"
        label = f"{key.asset_key.to_user_string()}: {key.name}"
        alerts.append(
            Alert(
                alert_id=f"check:{name}:{record.run_id}:{int(record.timestamp)}",
                kind="check_resolved" if resolved else "check_failed",
                title=f"Resolved: {label}" if resolved else f"{now}: {label}",
                summary=str(record.metadata.get("summary", ""))
                + ("" if resolved else f"\nNext step: {record.metadata.get('next_step', '')}"),
                url=asset_url(ui_url, key.asset_key, checks=True),
                severity="INFO" if resolved else now,
                fields={
                    "asset": key.asset_key.to_user_string(),
                    "check": key.name,
                    "run_id": record.run_id,
                    "previous": before,
                },
            )
        )
    return alerts


def build_check_alert_sensor(
    ui_url: str,
    webhook_url: WebhookUrl,
    config: AlertConfig,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """Posts an alert when an asset check starts failing and when it is resolved, once per transition.

    Args:
        ui_url: the Dagster UI's base URL, for links.
        webhook_url: returns the webhook URL at tick time (None: alerting is off).
        config: timeouts and retries.
        default_status: whether the sensor runs without being switched on.

    Example:
        >>> build_check_alert_sensor("http://127.0.0.1:3000", lambda: os.environ.get("ALERT_WEBHOOK_URL"), config)
    """

    @dg.sensor(
        name="asset_check_alerts",
        minimum_interval_seconds=30,
        default_status=default_status,
        description="Alerts the webhook when an asset check fails or recovers (transitions only).",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        state = _load(context.cursor)
        keys = list(context.repository_def.asset_graph.asset_check_keys)
        current = latest_results(context.instance, keys)
        outcomes = state.get("outcomes", {})
        new = check_transitions(outcomes, current, ui_url)
        state["outcomes"] = {**outcomes, **{k.to_user_string(): r.outcome for k, r in current.items()}}
        return _deliver(context, state, new, webhook_url, config)

    return _sensor


def failed_runs(instance: dg.DagsterInstance, after: float, seen: set[str]) -> list[dg.RunRecord]:
    """Failed runs updated after ``after`` (a timestamp), oldest first, minus ``seen``."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=datetime.fromtimestamp(after, UTC)),
        limit=100,
        ascending=True,
    )
    return [r for r in records if r.dagster_run.run_id not in seen]


def run_alert(record: dg.RunRecord, ui_url: str) -> Alert:
    """The alert for one failed run."""
    run = record.dagster_run
    return Alert(
        alert_id=f"run:{run.run_id}",
        kind="run_failed",
        title=f"Run failed: {run.job_name}",
        summary=f"Run {run.run_id[:8]} of {run.job_name} failed.",
        url=run_url(ui_url, run.run_id),
        severity="ERROR",
        fields={"run_id": run.run_id, "job": run.job_name},
    )


def build_run_failure_alert_sensor(
    ui_url: str,
    webhook_url: WebhookUrl,
    config: AlertConfig,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """Posts an alert for every failed run of the code location, once.

    Args:
        ui_url: the Dagster UI's base URL, for links.
        webhook_url: returns the webhook URL at tick time (None: alerting is off).
        config: timeouts and retries.
        default_status: whether the sensor runs without being switched on.

    Example:
        >>> build_run_failure_alert_sensor("http://127.0.0.1:3000", lambda: None, config)
    """

    @dg.sensor(
        name="run_failure_alerts",
        minimum_interval_seconds=30,
        default_status=default_status,
        description="Alerts the webhook once for every failed run.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        state = _load(context.cursor)
        after = state.get("after", (datetime.now(UTC) - RUN_LOOKBACK).timestamp())
        seen = set(state.get("seen", []))
        records = failed_runs(context.instance, after, seen)
        if records:
            newest = max(r.update_timestamp.timestamp() for r in records)
            state["seen"] = sorted(
                {r.dagster_run.run_id for r in records if r.update_timestamp.timestamp() == newest}
                | (seen if newest == after else set())
            )
            state["after"] = newest
        else:
            state["after"] = after
        return _deliver(context, state, [run_alert(r, ui_url) for r in records], webhook_url, config)

    return _sensor

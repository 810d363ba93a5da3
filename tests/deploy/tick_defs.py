"""A second, tiny code location for the deployment test: one schedule and one sensor the daemon must tick.

The platform's own schedule runs at 06:00 UTC and its sensor needs Estuary, so the test serves this
location beside the real one; the test starts the schedule with a start time in the past, so the
daemon owes it a tick at once instead of at the next minute.
"""

import dagster as dg


@dg.asset
def deploy_probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Records which tick asked for it."""
    return dg.MaterializeResult(metadata={"requested_by": context.run.tags.get("dagster/schedule_name")
                                          or context.run.tags.get("dagster/sensor_name", "")})


probe_job = dg.define_asset_job("deploy_probe_job", selection=[deploy_probe])

every_minute = dg.ScheduleDefinition(name="deploy_probe_schedule", job=probe_job, cron_schedule="* * * * *")


@dg.sensor(job=probe_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
def deploy_probe_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Asks for one run, the first time it is evaluated."""
    if context.cursor:
        return dg.SensorResult(skip_reason="already requested")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key="first")], cursor="done")


defs = dg.Definitions(assets=[deploy_probe], jobs=[probe_job], schedules=[every_minute], sensors=[deploy_probe_sensor])

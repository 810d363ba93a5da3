"""A second, tiny code location for the deployment test: one schedule and one sensor the daemon must tick.

The platform's own sensor needs Estuary (the test stops it), so the test serves this location beside the
real one. The schedule runs daily at 06:00 UTC, like the governance run; the test starts it with a start
time a day in the past, so the daemon owes it exactly one tick at once.
"""

import dagster as dg


@dg.asset
def deploy_probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Records which tick asked for it."""
    return dg.MaterializeResult(
        metadata={
            "requested_by": context.run.tags.get("dagster/schedule_name")
            or context.run.tags.get("dagster/sensor_name", "")
        }
    )


probe_job = dg.define_asset_job("deploy_probe_job", selection=[deploy_probe], executor_def=dg.in_process_executor)

daily = dg.ScheduleDefinition(name="deploy_probe_schedule", job=probe_job, cron_schedule="0 6 * * *")


@dg.sensor(job=probe_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
def deploy_probe_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Asks for one run, the first time it is evaluated."""
    if context.cursor:
        return dg.SensorResult(skip_reason="already requested")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key="first")], cursor="done")


defs = dg.Definitions(assets=[deploy_probe], jobs=[probe_job], schedules=[daily], sensors=[deploy_probe_sensor])

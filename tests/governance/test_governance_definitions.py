"""How governance is wired into the code location: the job, its 06:00 UTC schedule, sensors on by default,
blocking checks on the raw tables, freshness policies and the models' automation, and the config file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from sophia_dagster.definitions import defs
from sophia_dagster.governance.config import GovernanceConfigError, load_governance_config
from sophia_dagster.governance.report import CheckLine, latest_report, report_path, write_report

RAW_DEALS = dg.AssetKey(["snowflake", "sophia", "raw", "deals"])
MODEL = dg.AssetKey(["snowflake", "sophia", "analytics", "deal_pipeline"])


@pytest.fixture(scope="module")
def loaded() -> dg.Definitions:
    return defs()


def test_schedule_runs_the_job_daily_at_six_utc_and_is_on(loaded: dg.Definitions) -> None:
    schedule = loaded.resolve_schedule_def("governance_daily_schedule")
    assert schedule.cron_schedule == "0 6 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "governance_daily"


def test_the_job_runs_every_local_check_and_the_report_last(loaded: dg.Definitions) -> None:
    job = loaded.resolve_job_def("governance_daily")
    graph = loaded.resolve_asset_graph()
    in_job = job.asset_layer.asset_graph.asset_check_keys
    names = {k.name for k in in_job if k.asset_key == RAW_DEALS}
    assert names == {"parity", "key_uniqueness", "foreign_keys", "schema_drift", "volume_anomaly", "pipeline_health"}
    assert not any(k.asset_key.path[-1].startswith("hubspot") for k in in_job)
    assert len(graph.asset_check_keys) > len(in_job)
    report = job.graph.node_named("governance__health_report")
    assert report.definition.tags["dagster/priority"] == "-100"


def test_parity_and_uniqueness_block_the_models(loaded: dg.Definitions) -> None:
    graph = loaded.resolve_asset_graph()
    blocking = {k.name for k in graph.asset_check_keys if k.asset_key == RAW_DEALS and graph.get_check_spec(k).blocking}
    assert blocking == {"parity", "key_uniqueness"}


def test_freshness_policies_and_model_automation(loaded: dg.Definitions) -> None:
    graph = loaded.resolve_asset_graph()
    for key in (RAW_DEALS, MODEL, dg.AssetKey(["memory", "hot", "deal_pipeline"])):
        assert isinstance(graph.get(key).freshness_policy, dg.FreshnessPolicy), key
    assert "fresh over checked inputs" in graph.get(MODEL).automation_condition.get_label()
    sensor = loaded.resolve_sensor_def("default_automation_condition_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    for name in ("asset_check_alerts", "run_failure_alerts"):
        assert loaded.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING


def test_a_bad_threshold_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "governance.yaml"
    path.write_text("%YAML 1.2\n---\nvolume_anomaly:\n  z_threshold: -1\n")
    with pytest.raises(
        GovernanceConfigError, match=r"governance.yaml: volume_anomaly.z_threshold: Input should be greater than 0"
    ):
        load_governance_config(path)
    path.write_text("parity:\n  severity: FATAL\n")
    with pytest.raises(GovernanceConfigError, match=r"parity.severity"):
        load_governance_config(path)


def test_yaml_1_2_reads_no_as_a_string(tmp_path: Path) -> None:
    path = tmp_path / "governance.yaml"
    path.write_text("platform:\n  forbidden_imports: [no, requests]\n")
    assert load_governance_config(path).platform.forbidden_imports == ("no", "requests")


def test_report_path_latest_report_and_the_trend(tmp_path: Path) -> None:
    assert latest_report(tmp_path) is None
    write_report(
        tmp_path, "local", [CheckLine("t: parity", "passed", "ok"), CheckLine("t: drift", "WARN", "x")], [], {}
    )
    second = write_report(
        tmp_path,
        "local",
        [CheckLine("t: parity", "ERROR", "1 key"), CheckLine("t: drift", "passed", "ok")],
        [],
        {"t": 60.0},
    )
    assert report_path(tmp_path) == tmp_path / "governance" / "health_report.md"
    assert latest_report(tmp_path) == second
    assert "New failures: t: parity" in second and "Resolved: t: drift" in second
    assert "![check results and lag, last 14 days](health_report.png)" in second
    assert (tmp_path / "governance" / "health_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""deploy/dagster.yaml: a Dagster instance whose runs and events live in PostgreSQL (dagster-postgres)."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from tests.deploy.conftest import ADMIN_DSN
from tests.deploy.tick_defs import deploy_probe


def test_a_materialization_is_stored_in_postgres_and_read_back(dagster_environ: dict[str, str]) -> None:
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        result = dg.materialize([deploy_probe], instance=instance, tags={"dagster/sensor_name": "by-hand"})
        assert result.success
        event = instance.fetch_materializations(dg.AssetKey("deploy_probe"), limit=1).records[0]
        assert event.run_id == result.run_id
        assert event.asset_materialization.metadata["requested_by"] == dg.TextMetadataValue("by-hand")
        assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS

    database = dagster_environ["DAGSTER_PG_DB"]
    with psycopg.connect(ADMIN_DSN.replace("/test", f"/{database}")) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (result.run_id,),
        ).fetchone()[0]
        runs = conn.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,)).fetchone()[0]
    assert (stored, runs) == (1, "SUCCESS")


def test_a_missing_connection_variable_is_named(
    dagster_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_PG_HOST")
    with pytest.raises(dg.DagsterInvalidConfigError, match="DAGSTER_PG_HOST"):
        dg.DagsterInstance.get()

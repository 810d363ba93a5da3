"""The embedded warehouse killed while a step uses it: the step fails fast, names the crash, the next run works.

Each test has a state directory of its own (the kill must not disturb other tests' warehouse). The server
is SIGKILLed once it has spent CPU on the step's statement, i.e. during the build, not before it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from sophia_dagster.warehouse.assets import model_asset
from sophia_dagster.warehouse.bulk import load_arrow
from sophia_dagster.warehouse.embedded import (
    EmbeddedSnowflakeResource,
    embedded_snowflake_resource,
    ensure_embedded_warehouse,
)
from sophia_dagster.warehouse.models import Model, ModelConfig
from tests.processes import kill_when_busy

FAIL_WITHIN_SECONDS = 30.0
ROWS = 15_000
SLOW_SELECT = (
    "SELECT COUNT(*) AS MATCHES FROM SOPHIA.RAW.FAULT_NUMBERS a CROSS JOIN SOPHIA.RAW.FAULT_NUMBERS b "
    "WHERE (a.N * 7919 + b.N * 104729) % 1000003 = 17"
)


@pytest.fixture()
def fault_warehouse(make_state_dir: Callable[[str], Path]) -> EmbeddedSnowflakeResource:
    """A warehouse of the test's own with a table big enough that the slow model takes seconds."""
    snowflake = embedded_snowflake_resource(make_state_dir("warehouse-fault"))
    with snowflake.get_connection() as conn:
        cursor = conn.cursor()
        for statement in ("CREATE DATABASE IF NOT EXISTS SOPHIA", "CREATE SCHEMA IF NOT EXISTS SOPHIA.RAW"):
            cursor.execute(statement)
        cursor.execute("CREATE SCHEMA IF NOT EXISTS SOPHIA.ANALYTICS")
        load_arrow(cursor, pa.table({"n": pa.array(range(ROWS), pa.int64())}), "SOPHIA.RAW.FAULT_NUMBERS")
    return snowflake


def slow_model() -> Model:
    config = ModelConfig(
        description="A model slow enough to be killed mid-build", target_lag="1 hour", fail_window_minutes=60
    )
    return Model("fault_slow", Path("fault_slow.sql"), SLOW_SELECT, config, ("SOPHIA.RAW.FAULT_NUMBERS",))


def test_a_warehouse_killed_during_a_model_build_fails_the_step_fast_and_the_next_run_succeeds(
    fault_warehouse: EmbeddedSnowflakeResource,
) -> None:
    asset = model_asset(slow_model())
    endpoint = ensure_embedded_warehouse(Path(fault_warehouse.state_dir))
    killed_at: list[float] = []
    watcher = kill_when_busy(endpoint.pid, killed_at)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([asset], resources={"snowflake": fault_warehouse}, instance=instance, raise_on_error=False)
    watcher.join(5)
    assert killed_at, "the warehouse was never busy with the model"
    [failure] = [
        entry
        for entry in instance.all_logs(result.run_id)
        if entry.dagster_event_type == dg.DagsterEventType.STEP_FAILURE
    ]
    elapsed = failure.timestamp - killed_at[0]
    print(f"warehouse death -> step failure: {elapsed:.1f} s")
    message = failure.dagster_event.step_failure_data.error.to_string()
    assert elapsed < FAIL_WITHIN_SECONDS, f"the step failed {elapsed:.0f} s after the warehouse died"
    assert f"pid {endpoint.pid}" in message and "exited" in message, message
    assert "DROP" not in message and "ROLLBACK" not in message

    again = dg.materialize([asset], resources={"snowflake": fault_warehouse})
    assert again.success
    [event] = again.asset_materializations_for_node(asset.op.name)
    assert event.metadata["dagster/row_count"].value == 1

"""L4 with its warehouse killed, and after a killed writer: fail fast with the real cause; clean up what was left."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from sophia_dagster.memory.l4_warehouse import WarehouseStore
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.warehouse.embedded import (
    EmbeddedWarehouseGoneError,
    embedded_snowflake_resource,
    ensure_embedded_warehouse,
)
from tests.processes import kill_when_busy

SCHEMA = "MEM_FAULTS"
WRITER = textwrap.dedent(
    """
    import sys, pyarrow as pa
    from sophia_dagster.memory.l4_warehouse import WarehouseStore
    from sophia_dagster.memory.refs import OutputRef
    from sophia_dagster.warehouse.embedded import embedded_snowflake_resource
    store = WarehouseStore(snowflake=embedded_snowflake_resource(sys.argv[1]), schema_name="MEM_FAULTS")
    rows = 1_500_000
    store.write(OutputRef(("l4_killed",)), pa.table({"i": pa.array(range(rows)), "s": ["x" * 20] * rows}), "ab" * 16)
    """
)


@pytest.fixture()
def store(make_state_dir: Callable[[str], Path]) -> WarehouseStore:
    """L4 on a warehouse of this test's own (it gets killed)."""
    return WarehouseStore(snowflake=embedded_snowflake_resource(make_state_dir("l4-faults")), schema_name=SCHEMA)


def staging_tables(store: WarehouseStore) -> list[str]:
    with store.snowflake.get_connection() as conn:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME LIKE %s",
            (SCHEMA, "%_LOAD_%"),
        )
        return [name for (name,) in cursor.fetchall()]


def test_a_write_whose_warehouse_dies_fails_in_seconds_with_the_crash_not_the_cleanup(store: WarehouseStore) -> None:
    ref, rows = OutputRef(("l4_dead",)), 1_500_000
    endpoint = ensure_embedded_warehouse(Path(store.snowflake.state_dir))
    killed_at: list[float] = []
    watcher = kill_when_busy(endpoint.pid, killed_at)
    with pytest.raises(EmbeddedWarehouseGoneError) as caught:
        store.write(ref, pa.table({"i": pa.array(range(rows)), "s": ["x" * 20] * rows}), "v1" * 16)
    elapsed = time.time() - killed_at[0]
    watcher.join(5)
    assert elapsed < 10, f"the write failed {elapsed:.0f} s after the warehouse died"
    assert f"pid {endpoint.pid}" in str(caught.value) and "exited" in str(caught.value)


def test_a_killed_writers_staging_table_is_dropped_by_the_next_write(store: WarehouseStore) -> None:
    store.write(OutputRef(("l4_killed",)), pa.table({"i": [0], "s": ["a"]}), "00" * 16)
    state_dir = store.snowflake.state_dir
    writer = subprocess.Popen([sys.executable, "-c", WRITER, state_dir])
    try:
        deadline = time.monotonic() + 120
        while not staging_tables(store):
            assert writer.poll() is None and time.monotonic() < deadline, "the writer never created its staging table"
            time.sleep(0.05)
    finally:
        writer.kill()
        writer.wait(10)
    assert staging_tables(store), "the killed writer left no staging table (the test did not kill it mid-write)"
    store.write(OutputRef(("l4_killed",)), pa.table({"i": [1], "s": ["b"]}), "11" * 16)
    assert staging_tables(store) == []
    assert store.read(OutputRef(("l4_killed",))).value.column("i").to_pylist() == [1]

"""L4: asset tables in the warehouse, loaded with the bulk path (PUT + COPY INTO), partitions replaced.

Each table carries a `_MEMORY_PARTITION` column; a write deletes the partition's rows and loads the new
ones in one transaction, so re-running a partition never duplicates it. The registry table
`<schema>.SOPHIA_MEMORY_OUTPUTS` keeps the exact Arrow schema of every write, so an empty table
round-trips with its columns and types, and column names come back in their original case.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import time
from typing import Any

import pyarrow as pa
from dagster_snowflake import SnowflakeResource
from pydantic import Field

from sophia_dagster.memory import codec
from sophia_dagster.memory.errors import MissingValueError
from sophia_dagster.memory.refs import OutputRef
from sophia_dagster.memory.store import Stored, TierIOManager, TierStore
from sophia_dagster.warehouse.bulk import create_table_sql, load_arrow
from sophia_dagster.warehouse.objects import MEMORY_SCHEMA
from sophia_dagster.warehouse.transactions import cleanup, transaction

PARTITION_COLUMN = "_MEMORY_PARTITION"
REGISTRY = "SOPHIA_MEMORY_OUTPUTS"
SCHEMA_NAME = r"^[A-Za-z_][A-Za-z0-9_$]*$"
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6].upper()


def table_name(ref: OutputRef, schema: str) -> str:
    """`DB.SCHEMA.TABLE` for keys shaped `snowflake/<db>/<schema>/<table>`, else `<schema>.<KEY_JOINED>`."""
    parts = [re.sub(r"[^A-Za-z0-9_]", "_", part).upper() for part in ref.asset]
    if len(parts) == 4 and parts[0] == "SNOWFLAKE":
        return ".".join(parts[1:])
    return f"{schema}.{'_'.join(parts)}"


def warehouse_table(table: pa.Table, partition: str) -> pa.Table:
    """The rows as loaded: all-null columns typed as strings, plus the partition column."""
    columns = [column.cast(pa.string()) if pa.types.is_null(column.type) else column for column in table.columns]
    loaded = pa.Table.from_arrays(columns, names=table.column_names)
    return loaded.append_column(PARTITION_COLUMN, pa.array([partition] * table.num_rows, pa.string()))


def compatible(previous: pa.Schema, new: pa.Schema) -> bool:
    """Same column names and types, where an all-null column (an empty frame's) fits any type."""
    return previous.names == new.names and all(
        pa.types.is_null(field.type) or field.type == previous.field(i).type for i, field in enumerate(new)
    )


def _alive(pid: int) -> bool:
    """Whether a process of this host runs under `pid`."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WarehouseStore(TierStore):
    """L4 storage: one warehouse table per asset, in `schema_name` unless the key names the table."""

    snowflake: SnowflakeResource
    schema_name: str = Field(MEMORY_SCHEMA, pattern=SCHEMA_NAME, description="Schema for memory tables")
    abandoned_load_seconds: int = Field(
        3_600, ge=0, description="A staging table older than this was left by a killed write and is dropped"
    )

    @property
    def tier(self) -> str:
        return "L4 warehouse"

    def write(self, ref: OutputRef, value: Any, version: str) -> dict[str, Any]:
        """Replace the partition's rows (an empty table still creates the table and clears the partition)."""
        kind = codec.kind_of(value)
        if kind not in codec.TABLE_KINDS:
            raise TypeError(f"{ref}: L4 stores tables (pyarrow or pandas), got {type(value).__qualname__}")
        table, target = codec.to_arrow(value), table_name(ref, self.schema_name)
        loaded = warehouse_table(table, ref.partition_label)
        staging = f"{target}_LOAD_{int(time.time())}_{HOST}_{os.getpid()}_{version[:8].upper()}"
        with self.snowflake.get_connection() as conn:
            cursor = conn.cursor()
            self._prepare(cursor, ref, target, table.schema)
            cursor.execute(create_table_sql(target, loaded.schema))
            self._drop_abandoned_loads(cursor, target)
            try:
                rows = load_arrow(cursor, loaded, staging)
                with transaction(cursor):
                    self._replace_partition(cursor, target, staging, loaded.schema.names, ref)
                    self._register(cursor, target, ref, kind, table.schema, version)
            finally:
                cleanup(cursor, f"DROP TABLE IF EXISTS {staging}")
        return {"memory/table": target, "memory/rows": rows}

    def read(self, ref: OutputRef) -> Stored:
        """The partition's rows, with the schema (names, types, pandas index) they were written with."""
        target = table_name(ref, self.schema_name)
        with self.snowflake.get_connection() as conn:
            cursor = conn.cursor()
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema_name}")
            cursor.execute(self._registry_ddl())
            cursor.execute(
                f"SELECT KIND, ARROW_SCHEMA, VERSION FROM {self.schema_name}.{REGISTRY} "
                "WHERE TABLE_NAME = %s AND PARTITION_KEY = %s",
                (target, ref.partition_label),
            )
            head = cursor.fetchone()
            if head is None:
                raise MissingValueError(f"{self.tier} holds no value for {ref} (table {target})")
            cursor.execute(f'SELECT * FROM {target} WHERE "{PARTITION_COLUMN}" = %s', (ref.partition_label,))
            fetched = cursor.fetch_arrow_all()
        kind, schema_text, version = head
        schema = codec.schema_from_bytes(base64.b64decode(schema_text))
        table = schema.empty_table() if fetched is None else codec.conform(fetched, schema)
        return Stored(codec.from_arrow(table, kind), version)

    def _registry_ddl(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.schema_name}.{REGISTRY} (TABLE_NAME VARCHAR, PARTITION_KEY VARCHAR, "
            "KIND VARCHAR, ARROW_SCHEMA VARCHAR, VERSION VARCHAR, WRITTEN_AT TIMESTAMP_TZ)"
        )

    def _prepare(self, cursor: Any, ref: OutputRef, target: str, schema: pa.Schema) -> None:
        """Create schema and registry; a changed schema replaces an unpartitioned table, else is refused."""
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema_name}")
        cursor.execute(self._registry_ddl())
        cursor.execute(
            f"SELECT ARROW_SCHEMA FROM {self.schema_name}.{REGISTRY} WHERE TABLE_NAME = %s LIMIT 1", (target,)
        )
        row = cursor.fetchone()
        if row is None:
            return
        previous = codec.schema_from_bytes(base64.b64decode(row[0]))
        if compatible(previous, schema):
            return
        if ref.partition is not None:
            raise ValueError(
                f"{ref}: columns {schema.names} differ from those table {target} already holds for other "
                f"partitions ({previous.names}); drop the table or keep the schema"
            )
        cursor.execute(f"DROP TABLE IF EXISTS {target}")
        cursor.execute(f"DELETE FROM {self.schema_name}.{REGISTRY} WHERE TABLE_NAME = %s", (target,))

    def _drop_abandoned_loads(self, cursor: Any, target: str) -> None:
        """Drop the staging tables of `target` that killed writes left behind.

        A staging table is named with its start time, host and process: it is abandoned when its process
        on this host is gone, or when it is older than `abandoned_load_seconds` (a writer on another host).
        """
        *database, schema, name = target.split(".")
        information_schema = ".".join([*database, "INFORMATION_SCHEMA.TABLES"])
        cursor.execute(
            f"SELECT TABLE_NAME FROM {information_schema} WHERE TABLE_SCHEMA = %s AND TABLE_NAME LIKE %s",
            (schema, f"{name}_LOAD_%"),
        )
        staging = re.compile(rf"{re.escape(name)}_LOAD_(\d+)_([0-9A-F]{{6}})_(\d+)_[0-9A-F]{{8}}")
        cutoff = time.time() - self.abandoned_load_seconds
        for (table,) in cursor.fetchall():
            load = staging.fullmatch(table)
            if load and (int(load.group(1)) <= cutoff or (load.group(2) == HOST and not _alive(int(load.group(3))))):
                cleanup(cursor, f"DROP TABLE IF EXISTS {'.'.join([*database, schema, table])}")

    @staticmethod
    def _replace_partition(cursor: Any, target: str, staging: str, names: list[str], ref: OutputRef) -> None:
        columns = ", ".join(f'"{name.upper()}"' for name in names)
        cursor.execute(f'DELETE FROM {target} WHERE "{PARTITION_COLUMN}" = %s', (ref.partition_label,))
        cursor.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staging}")

    def _register(self, cursor: Any, target: str, ref: OutputRef, kind: str, schema: pa.Schema, version: str) -> None:
        key = (target, ref.partition_label)
        cursor.execute(f"DELETE FROM {self.schema_name}.{REGISTRY} WHERE TABLE_NAME = %s AND PARTITION_KEY = %s", key)
        cursor.execute(
            f"INSERT INTO {self.schema_name}.{REGISTRY} SELECT %s, %s, %s, %s, %s, CURRENT_TIMESTAMP()",
            (*key, kind, base64.b64encode(codec.schema_bytes(schema)).decode(), version),
        )


class WarehouseIOManager(TierIOManager):
    """L4 IO manager: asset tables in the warehouse via PUT + COPY INTO, partitions replaced in a transaction."""

    store: WarehouseStore

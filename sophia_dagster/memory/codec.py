"""Safe serialization of asset values: Arrow IPC for tables, JSON for the rest; never pickle.

A value has a kind: `arrow` (a `pyarrow.Table`), `pandas` (a `pandas.DataFrame`, carried as Arrow with
its pandas metadata so it comes back as the same frame) or `json` (dicts, lists, strings, numbers,
booleans, None). Anything else is refused with a `TypeError` naming its type.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from typing import Any

import pandas as pd
import pyarrow as pa

TABLE_KINDS = ("arrow", "pandas")
JSON_TYPES = (dict, list, str, int, float, bool, type(None))


def kind_of(value: Any) -> str:
    """The kind of a storable value; `TypeError` for anything else."""
    if isinstance(value, pa.Table):
        return "arrow"
    if isinstance(value, pd.DataFrame):
        return "pandas"
    if isinstance(value, JSON_TYPES):
        return "json"
    raise TypeError(
        f"memory tiers store pyarrow Tables, pandas DataFrames and JSON values; got {type(value).__qualname__}"
    )


def to_arrow(value: pa.Table | pd.DataFrame) -> pa.Table:
    """A table value as an Arrow table (a DataFrame keeps its index and dtypes in the schema metadata)."""
    return value if isinstance(value, pa.Table) else pa.Table.from_pandas(value)


def from_arrow(table: pa.Table, kind: str) -> pa.Table | pd.DataFrame:
    """An Arrow table back as the kind it was stored as."""
    return table.to_pandas() if kind == "pandas" else table


def schema_bytes(schema: pa.Schema) -> bytes:
    """An Arrow schema (with its metadata) as IPC bytes."""
    return schema.serialize().to_pybytes()


def schema_from_bytes(data: bytes) -> pa.Schema:
    """The schema written by `schema_bytes`."""
    return pa.ipc.read_schema(pa.py_buffer(data))


def table_to_ipc(table: pa.Table) -> bytes:
    """An Arrow table as IPC stream bytes."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def table_from_ipc(data: bytes) -> pa.Table:
    """The table written by `table_to_ipc`."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def _json_default(value: Any) -> Any:
    """JSON text for the scalar types tables hold that JSON has no type for."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__qualname__} is not JSON serializable")


_ENCODER = json.JSONEncoder(default=_json_default, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps_json(value: Any) -> str:
    """Strict JSON text (NaN and infinities refused, as JSON has none)."""
    return _ENCODER.encode(value)


def encode(value: Any) -> tuple[str, bytes]:
    """A value as (kind, bytes)."""
    kind = kind_of(value)
    if kind in TABLE_KINDS:
        return kind, table_to_ipc(to_arrow(value))
    return kind, dumps_json(value).encode()


def decode(kind: str, data: bytes) -> Any:
    """The value `encode` turned into (kind, bytes)."""
    if kind in TABLE_KINDS:
        return from_arrow(table_from_ipc(data), kind)
    if kind == "json":
        return json.loads(data)
    raise ValueError(f"unknown stored value kind {kind!r}")


def conform(columns: pa.Table, schema: pa.Schema) -> pa.Table:
    """Columns read back from a store (names in any case, looser types) cast to the schema they were written with."""
    by_name = {name.lower(): columns.column(i) for i, name in enumerate(columns.column_names)}
    arrays = []
    for field in schema:
        column = by_name.get(field.name.lower())
        if column is None:
            raise ValueError(f"stored table has no column {field.name!r}; it has {columns.column_names}")
        arrays.append(_cast(column, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_null(target):
        return pa.nulls(len(column), target)
    if (pa.types.is_binary(target) or pa.types.is_large_binary(target)) and pa.types.is_string(column.type):
        return pa.array([None if text is None else base64.b64decode(text) for text in column.to_pylist()], target)
    return column.cast(target)

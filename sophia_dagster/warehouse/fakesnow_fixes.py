"""Corrections to fakesnow 0.12 applied inside the embedded warehouse's server process.

fakesnow sends TIMESTAMP_TZ/NTZ/LTZ values to the connector as Snowflake's (epoch, fraction[, timezone])
structs but builds the structs without a validity mask, so a NULL timestamp reaches the client as
1970-01-01 00:00:00. `apply()` wraps its converter so NULL stays NULL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa


def _timestamps_keeping_nulls(convert: Callable[[Any], pa.Array]) -> Callable[[Any], pa.Array]:
    """`convert` (fakesnow's timestamp-to-struct) with the input's NULLs kept as NULL structs."""

    def convert_with_nulls(ts: pa.Array | pa.ChunkedArray) -> pa.Array:
        struct = convert(ts)
        values = ts.combine_chunks() if isinstance(ts, pa.ChunkedArray) else ts
        if values.null_count == 0:
            return struct
        return pa.StructArray.from_arrays(struct.flatten(), fields=list(struct.type), mask=values.is_null())

    return convert_with_nulls


def apply() -> None:
    """Patch fakesnow's timestamp conversion in this process (idempotent)."""
    import fakesnow.arrow

    if not getattr(fakesnow.arrow.timestamp_to_sf_struct, "_sophia_fixed", False):
        fixed = _timestamps_keeping_nulls(fakesnow.arrow.timestamp_to_sf_struct)
        fixed._sophia_fixed = True
        fakesnow.arrow.timestamp_to_sf_struct = fixed

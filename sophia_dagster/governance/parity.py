"""Source-to-warehouse parity without moving rows: checksums of hashed key ranges computed in each database.

Every live row's key is hashed (MD5 of its text form) in the database that holds it. Rows fall into
16^k buckets by the hash's first k hex digits; each database returns, per bucket, the row count, the sum
of 24 bits of the hash and the XOR of 32 other bits. Only buckets whose checksums differ are drilled
into: both sides list the keys of those buckets, and the difference names the missing and extra keys.
A 1,000,000-row table moves about 4,000 bucket rows per side, not its rows; row values never leave
either database (only keys are read, and only in differing buckets).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

HEX_DIGITS = "0123456789abcdef"
SUM_DIGITS = (1, 6)  # 24 bits: sums stay exact in a DOUBLE below 2^53 for 500 M rows per bucket
XOR_DIGITS = (7, 8)  # 32 bits
MAX_PREFIX = 5

Query = Callable[[str], list[tuple[Any, ...]]]
"""Runs one SQL statement in a database and returns its rows."""


@dataclass(frozen=True)
class Dialect:
    """How one database spells a key's text form, the XOR aggregate and the table reference."""

    text_type: str
    xor_aggregate: str


POSTGRES = Dialect(text_type="text", xor_aggregate="BIT_XOR")
SNOWFLAKE = Dialect(text_type="VARCHAR", xor_aggregate="BITXOR_AGG")


@dataclass(frozen=True)
class ParitySide:
    """A table in one database: how to query it, its SQL name, key columns and live-row filter."""

    query: Query
    dialect: Dialect
    table_sql: str
    key_columns: Sequence[str]
    live_filter: str = "TRUE"

    def hashed(self) -> str:
        """A subquery with each live row's key text ``k`` and its MD5 hex ``h``."""
        parts = [f"COALESCE(CAST({c} AS {self.dialect.text_type}), '<null>')" for c in self.key_columns]
        key = " || '|' || ".join(parts)
        return f"SELECT {key} AS k, MD5({key}) AS h FROM {self.table_sql} WHERE {self.live_filter}"


@dataclass
class ParityResult:
    """What a parity comparison found; keys are text forms (composite keys joined by '|')."""

    source_rows: int
    warehouse_rows: int
    buckets: int
    differing_buckets: int
    missing_in_warehouse: list[str] = field(default_factory=list)
    extra_in_warehouse: list[str] = field(default_factory=list)
    complete: bool = True
    """False when more buckets differed than were drilled into (the key counts are then lower bounds)."""

    @property
    def differing_keys(self) -> int:
        """Keys present on one side only (a lower bound when not ``complete``)."""
        return len(self.missing_in_warehouse) + len(self.extra_in_warehouse)

    @property
    def passed(self) -> bool:
        """Both sides hold exactly the same live keys."""
        return self.differing_buckets == 0

    def sample_keys(self, limit: int) -> list[str]:
        """Up to ``limit`` differing keys, missing ones first."""
        return (self.missing_in_warehouse + self.extra_in_warehouse)[:limit]


def _hex_value(expr: str, first: int, digits: int) -> str:
    """SQL turning ``digits`` hex characters of ``expr`` (from 1-based ``first``) into an integer, portably."""
    terms = [
        f"(CAST(POSITION(SUBSTR({expr}, {first + i}, 1) IN '{HEX_DIGITS}') AS BIGINT) - 1) * {16 ** (digits - 1 - i)}"
        for i in range(digits)
    ]
    return "(" + " + ".join(terms) + ")"


def prefix_length(rows: int, rows_per_bucket: int) -> int:
    """How many hex digits of the hash name a bucket so that one holds about ``rows_per_bucket`` rows."""
    if rows <= rows_per_bucket:
        return 1
    return max(1, min(MAX_PREFIX, math.ceil(math.log(rows / rows_per_bucket, 16))))


def bucket_checksums(side: ParitySide, prefix: int) -> dict[str, tuple[int, int, int]]:
    """``{bucket: (rows, hash sum, hash xor)}`` computed inside the side's database."""
    sql = (
        f"SELECT SUBSTR(h, 1, {prefix}) AS b, COUNT(*), SUM({_hex_value('h', *SUM_DIGITS)}), "
        f"{side.dialect.xor_aggregate}({_hex_value('h', *XOR_DIGITS)}) FROM ({side.hashed()}) hashed GROUP BY 1"
    )
    return {str(b): (int(n), int(s), int(x)) for b, n, s, x in side.query(sql)}


def keys_in(side: ParitySide, prefix: int, buckets: Sequence[str]) -> set[str]:
    """The key texts of the side's live rows in ``buckets`` (keys only, never row values)."""
    listed = ", ".join(f"'{b}'" for b in buckets)
    sql = f"SELECT k FROM ({side.hashed()}) hashed WHERE SUBSTR(h, 1, {prefix}) IN ({listed})"
    return {str(row[0]) for row in side.query(sql)}


def count_rows(side: ParitySide) -> int:
    """Live rows of the side's table."""
    return int(side.query(f"SELECT COUNT(*) FROM {side.table_sql} WHERE {side.live_filter}")[0][0])


def compare(
    source: ParitySide, warehouse: ParitySide, rows_per_bucket: int = 256, max_drill_buckets: int = 64
) -> ParityResult:
    """Compare the live keys of ``source`` and ``warehouse`` by bucketed checksums, then drill into differences.

    Args:
        source: the source table (PostgreSQL).
        warehouse: the warehouse table (Snowflake, or the embedded engine).
        rows_per_bucket: target rows per bucket; the bucket count follows from the source's row count.
        max_drill_buckets: differing buckets whose keys are listed at most.

    Example:
        >>> result = compare(ParitySide(pg, POSTGRES, "public.deals", ["id"]),
        ...                  ParitySide(sf, SNOWFLAKE, "SOPHIA.RAW.DEALS", ["ID"], live))
        >>> result.passed, result.sample_keys(20)
    """
    prefix = prefix_length(count_rows(source), rows_per_bucket)
    left, right = bucket_checksums(source, prefix), bucket_checksums(warehouse, prefix)
    differing = sorted(b for b in left.keys() | right.keys() if left.get(b) != right.get(b))
    drilled = differing[:max_drill_buckets]
    result = ParityResult(
        source_rows=sum(v[0] for v in left.values()),
        warehouse_rows=sum(v[0] for v in right.values()),
        buckets=16**prefix,
        differing_buckets=len(differing),
        complete=len(drilled) == len(differing),
    )
    if drilled:
        in_source, in_warehouse = keys_in(source, prefix, drilled), keys_in(warehouse, prefix, drilled)
        result.missing_in_warehouse = sorted(in_source - in_warehouse)
        result.extra_in_warehouse = sorted(in_warehouse - in_source)
    return result

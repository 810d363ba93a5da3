"""The embedded warehouse returns NULL timestamps as NULL (fakesnow 0.12 alone sends 1970-01-01)."""

from __future__ import annotations

from datetime import UTC, datetime

from sophia_dagster.warehouse.embedded import EmbeddedSnowflakeResource
from tests.warehouse.conftest import warehouse_rows


def test_null_timestamps_stay_null_next_to_real_ones(snowflake: EmbeddedSnowflakeResource) -> None:
    rows = warehouse_rows(
        snowflake,
        """
        SELECT * FROM (
            SELECT 1 AS N, NULL::TIMESTAMP_TZ AS TZ, NULL::TIMESTAMP_NTZ AS NTZ, NULL::TIMESTAMP_LTZ AS LTZ
            UNION ALL
            SELECT 2, '2026-03-01 12:00:00.123456+00:00'::TIMESTAMP_TZ, '2026-03-01 12:00:00'::TIMESTAMP_NTZ,
                   '2026-03-01 12:00:00+00:00'::TIMESTAMP_LTZ
        ) ORDER BY N""",
    )
    assert (rows[0]["tz"], rows[0]["ntz"], rows[0]["ltz"]) == (None, None, None)
    assert rows[1]["tz"] == datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert rows[1]["ntz"] == datetime(2026, 3, 1, 12, 0)
    assert rows[1]["ltz"].astimezone(UTC) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

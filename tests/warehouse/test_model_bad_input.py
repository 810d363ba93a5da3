"""Whatever bytes a model file holds, loading it returns a model or raises `ModelError` naming the file."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sophia_dagster.warehouse.models import ModelError, load_model

HEADER = b"-- description: d\n-- target_lag: 1 minute\n-- fail_window_minutes: 10\n"
SQL_PIECES = st.sampled_from(
    [
        '"',
        "'",
        "(",
        ")",
        "SELECT",
        " FROM ",
        "SOPHIA.RAW.DEALS",
        ",",
        "--",
        "/*",
        "*/",
        "$$",
        "`",
        ";",
        "WITH",
        " AS ",
        "JOIN",
        "\x00",
        "\\",
        "{",
        "}",
        "[",
        "]",
        ":",
        "-- key: v\n",
        "\n",
        " ",
        "1",
        "ü",
        "\ufeff",
    ]
)


def load_bytes(data: bytes) -> None:
    """Load a model file holding exactly `data`; only ModelError naming the file may escape."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.sql"
        path.write_bytes(data)
        try:
            load_model(path)
        except ModelError as exc:
            assert str(path) in str(exc)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (HEADER + b'"', "not valid Snowflake SQL"),
        (HEADER + b"SELECT " + b"(" * 5_000 + b"1" + b")" * 5_000, "nested too deeply"),
        (HEADER + b"SELECT '\xff\xfe' FROM SOPHIA.RAW.DEALS", "not UTF-8"),
    ],
)
def test_a_bad_model_file_raises_only_the_model_error_naming_it(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.sql"
    path.write_bytes(data)
    with pytest.raises(ModelError) as caught:
        load_model(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(SQL_PIECES, max_size=40).map("".join))
def test_any_sql_body_loads_or_raises_the_model_error(body: str) -> None:
    load_bytes(HEADER + body.encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_load_or_raise_the_model_error(data: bytes) -> None:
    load_bytes(data)

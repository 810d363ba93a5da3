"""Serialization and refs: what memory tiers accept, refuse, and how they name what they store."""

from __future__ import annotations

import datetime as dt
import decimal

import pandas as pd
import pyarrow as pa
import pytest

from sophia_dagster.memory import codec
from sophia_dagster.memory.refs import OutputRef


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None, True], "b": {"c": "é"}},
        ["x", {"y": 1}],
        "plain text",
        42,
        None,
        pa.table({"i": pa.array([1, None], pa.int16()), "t": pa.array([1, 2], pa.timestamp("us", tz="UTC"))}),
    ],
)
def test_encode_decode_round_trip(value: object) -> None:
    kind, data = codec.encode(value)
    assert isinstance(data, bytes)
    decoded = codec.decode(kind, data)
    assert decoded.equals(value) if isinstance(value, pa.Table) else decoded == value


def test_dataframe_keeps_index_and_dtypes() -> None:
    frame = pd.DataFrame(
        {"amount": [decimal.Decimal("1.10"), None], "day": [dt.date(2025, 1, 2), None], "n": [1, 2]},
        index=pd.Index(["a", "b"], name="key"),
    )
    kind, data = codec.encode(frame)
    assert kind == "pandas"
    pd.testing.assert_frame_equal(codec.decode(kind, data), frame)


def test_untrusted_types_are_refused_not_pickled() -> None:
    class Secretive:
        pass

    with pytest.raises(TypeError, match=r"; got .*Secretive$"):
        codec.encode(Secretive())
    with pytest.raises(TypeError, match="got set"):
        codec.encode({1, 2})
    with pytest.raises(ValueError, match="unknown stored value kind 'pickle'"):
        codec.decode("pickle", b"\x80\x04K\x01.")


def test_nan_is_refused_as_json() -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        codec.encode({"x": float("nan")})


def test_conform_restores_names_types_and_null_columns() -> None:
    schema = pa.schema([("CamelCase", pa.int32()), ("when", pa.timestamp("us", tz="UTC")), ("nothing", pa.null())])
    loose = pa.table({"CAMELCASE": [1, 2], "WHEN": ["2025-01-01T00:00:00+00:00", None], "NOTHING": ["", ""]})
    conformed = codec.conform(loose, schema)
    assert conformed.schema == schema
    assert conformed.column("when").to_pylist()[0] == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="no column 'missing'"):
        codec.conform(loose, pa.schema([("missing", pa.int8())]))


def test_ttl_metadata_is_validated_with_the_asset_named() -> None:
    assert OutputRef(("a",), None, {"memory/ttl_seconds": 30}).ttl_seconds == 30
    with pytest.raises(ValueError, match="asset team/report: metadata memory/ttl_seconds must be a positive int"):
        _ = OutputRef(("team", "report"), None, {"memory/ttl_seconds": "soon"}).ttl_seconds


def test_ref_describes_asset_and_partition() -> None:
    assert str(OutputRef(("a", "b"), "2025-01-01")) == "asset a/b partition 2025-01-01"
    assert str(OutputRef(("a",))) == "asset a"

"""The column-by-column batch encoder gives exactly the row-by-row values, and the same errors."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from onnxship.contract.encode import Encoder, InvalidRecord
from onnxship.convert import export
from tests.conftest import churn_raw, churn_xy, fitted


@functools.cache
def encoder() -> Encoder:
    _, _, roles = churn_xy()
    pipeline = fitted("logistic_regression")
    return Encoder(export.feature_schema(export.convert(pipeline, roles, 17), roles, pipeline))


def row_by_row(enc: Encoder, records: list) -> dict:
    return enc.feeds([enc.values(record, row) for row, record in enumerate(records, 1)])


def assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape
        if a[name].dtype == np.float32:
            np.testing.assert_array_equal(a[name], b[name])  # NaN == NaN here, bit patterns aside
            assert (np.signbit(a[name]) == np.signbit(b[name])).all()
        else:
            assert (a[name] == b[name]).all()


def test_plain_csv_rows_encode_alike():
    records = churn_raw().head(300).to_dict("records")
    enc = encoder()
    assert_same(enc.encode(records), row_by_row(enc, records))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "NA",
        "-",
        " 12.5\t",
        "-0",
        "+.5",
        "1e-45",
        "3.4028235e38",
        7,
        2.5,
        None,
        float("nan"),
        np.float32(1.5),
    ],
)
def test_any_accepted_value_encodes_alike(value):
    records = churn_raw().head(5).to_dict("records")
    records[2] = {**records[2], "total_day_minutes": value}
    enc = encoder()
    assert_same(enc.encode(records), row_by_row(enc, records))


@pytest.mark.parametrize("value", ["NAN", "inf", "1_000", "1e999", "1e", "٣", "12 5", True, [1]])
def test_a_refused_value_raises_what_row_by_row_raises(value):
    records = churn_raw().head(5).to_dict("records")
    records[3] = {**records[3], "total_day_minutes": value}
    enc = encoder()
    with pytest.raises(InvalidRecord) as batch:
        enc.encode(records)
    with pytest.raises(InvalidRecord) as rows:
        row_by_row(enc, records)
    assert str(batch.value) == str(rows.value) and batch.value.row == 4


def test_a_missing_field_and_an_empty_batch():
    records = churn_raw().head(3).to_dict("records")
    del records[1]["state"]
    with pytest.raises(InvalidRecord, match="row 2, column 'state': the field is missing"):
        encoder().encode(records)
    empty = encoder().encode([])
    assert all(array.shape == (0, 1) for array in empty.values())

"""The integer row-ID rule (onnxship/train/id_columns.py), one hand-worked column per clause."""

from __future__ import annotations

import numpy as np
import pytest

from onnxship.train.id_columns import integer_id_reason

N = 150  # above MIN_ROWS (100)


def shuffled(values) -> np.ndarray:
    """A fixed permutation (37 is prime to 150): no order left, values unchanged."""
    values = np.asarray(values, dtype=np.float64)
    return values[(np.arange(len(values)) * 37) % len(values)]


@pytest.mark.parametrize(
    ("name", "values", "reason"),
    [
        # 2a: strictly monotonic integers are a counter, however wide their steps.
        ("row number 1..150", np.arange(1, N + 1), "strictly increase"),
        ("keys 1000, 1007, ... (steps of 7)", 1000 + 7 * np.arange(N), "strictly increase"),
        ("countdown", np.arange(N, 0, -1), "strictly decrease"),
        ("written as 1.0, 2.0, ...", np.arange(N) + 0.0, "strictly increase"),
        # 2b: 150 distinct of 150, span 150 <= 2 x 150.
        ("shuffled 1..150", shuffled(np.arange(1, N + 1)), "distinct in 150 of 150 rows, spanning only 150"),
        # 2b: one repeat: 149 distinct >= 0.99 x 150 = 148.5; span 150.
        (
            "shuffled 1..150 with one value twice",
            shuffled(np.r_[np.arange(1, N), 1]),
            "distinct in 149 of 150 rows",
        ),
        # 2b: every other number of 1..300: span 299 <= 300.
        ("shuffled odd numbers 1..299", shuffled(np.arange(1, 2 * N, 2)), "spanning only 299"),
        # Missing cells are left out: 150 present of 160.
        (
            "row number with holes",
            np.r_[np.arange(1, N + 1), [np.nan] * 10],
            "strictly increase down the file (150 rows)",
        ),
    ],
)
def test_row_ids_are_found(name, values, reason):
    found = integer_id_reason(np.asarray(values, dtype=np.float64))
    assert found is not None and reason in found, name


@pytest.mark.parametrize(
    ("name", "values"),
    [
        # Rule 1: fewer than 100 present cells cannot tell.
        ("99 rows 1..99", np.arange(1, 100)),
        ("row number, but 99 present", np.r_[np.arange(1, 100), [np.nan] * 60]),
        # Rule 1: a fraction means a measurement, even strictly increasing.
        ("increasing decimals", np.arange(N) + 0.5),
        ("distinct floats", shuffled(np.arange(N) * 0.37)),
        # 2b fails on repeats: "total_day_calls"-like counts, 150 rows of ~100 +/- 20.
        ("call counts", shuffled(80 + (np.arange(N) * 7) % 41)),
        # 2b fails on span: 150 distinct integers spread over 0..100,000 (an income): span ~ 99,500 > 300.
        ("distinct but wide (income)", shuffled((np.arange(N) * 7919) % 100_003)),
        # 2b fails on span: 1..151 minus one = 150 distinct of... take every third number: span 448 > 300.
        ("shuffled every third number", shuffled(np.arange(1, 3 * N, 3))),
        # 2b fails on distinctness: 1..100 with 50 repeats: 100 distinct < 148.5.
        ("shuffled with many repeats", shuffled(np.r_[np.arange(1, 101), np.arange(1, 51)])),
        # 2a needs strict order: a file sorted by age has ties (and 2b fails: 50 distinct).
        ("sorted with ties", np.sort((np.arange(N) * 13) % 50)),
        # A constant column is neither.
        ("constant", np.zeros(N)),
    ],
)
def test_features_are_kept(name, values):
    assert integer_id_reason(np.asarray(values, dtype=np.float64)) is None, name

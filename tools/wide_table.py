"""A generated wide table: thousands of numeric columns, mostly 0/1 indicators, and a few categoricals.

Shaped like the real table issue 23 was measured on (8,190 grant applications x 1,503 columns: 1,497
numeric, mostly 0/1, and 6 categorical): most numeric columns are sparse 0/1 indicators, one in ten is
a float (some with missing cells), six categoricals of 3-40 levels (one with missing cells), and a
binary target that depends on about 40 of the columns, so the models have real signal to find.
Deterministic from the seed (the same seed gives the same bytes).

    python -m tools.wide_table ROWS NUMERIC OUT.csv [--seed N]   # e.g. 8190 1497 /tmp/wide.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

TARGET = "outcome"
POSITIVE = "granted"
CATEGORICAL = 6


def _indicators(rng: np.random.Generator, rows: int, count: int) -> np.ndarray:
    """``count`` 0/1 columns, each with its own prevalence (1 % to 40 %)."""
    prevalence = rng.uniform(0.01, 0.4, count)
    return (rng.random((rows, count)) < prevalence).astype(np.float64)


def _floats(rng: np.random.Generator, rows: int, count: int) -> np.ndarray:
    """``count`` float columns (counts, amounts, scores); a third of them have 5 % missing cells."""
    values = np.empty((rows, count))
    for j in range(count):
        kind = j % 3
        if kind == 0:
            values[:, j] = rng.poisson(rng.uniform(0.5, 5), rows)
        elif kind == 1:
            values[:, j] = np.round(rng.lognormal(3, 1, rows), 2)
        else:
            values[:, j] = np.round(rng.normal(0, 1, rows), 3)
            values[rng.random(rows) < 0.05, j] = np.nan
    return values


def make_wide(rows: int, numeric: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The header, the numeric block [rows, numeric] (NaN = missing) and the text block
    [rows, 6 categoricals + target] of the table."""
    rng = np.random.default_rng(seed)
    floats = max(1, numeric // 10)
    block = np.hstack([_indicators(rng, rows, numeric - floats), _floats(rng, rows, floats)])
    levels = [3, 5, 8, 12, 20, 40]
    codes = np.column_stack([rng.integers(0, n, rows) for n in levels])
    text = np.empty((rows, CATEGORICAL + 1), dtype=object)
    for j, n in enumerate(levels):
        text[:, j] = np.array([f"c{j}_{v}" for v in range(n)], dtype=object)[codes[:, j]]
    text[rng.random(rows) < 0.03, CATEGORICAL - 1] = ""  # a categorical with missing cells
    informative = rng.choice(numeric, 40, replace=False)
    weights = rng.normal(0, 0.8, 40)
    filled = np.nan_to_num(block[:, informative])
    scaled = (filled - filled.mean(axis=0)) / (filled.std(axis=0) + 1e-9)
    logit = -1.5 + scaled @ weights * 0.5 + 0.8 * (codes[:, 0] == 1) - 0.05 * codes[:, 3]
    positive = rng.random(rows) < 1 / (1 + np.exp(-logit))
    text[:, CATEGORICAL] = np.where(positive, POSITIVE, "refused")
    header = [f"x{j:04d}" for j in range(numeric)] + [f"cat{j}" for j in range(CATEGORICAL)] + [TARGET]
    return header, block, text


def write_wide(path: Path, rows: int, numeric: int, seed: int = 0) -> None:
    """The table as CSV (an empty cell = missing), written a row block at a time."""
    header, block, text = make_wide(rows, numeric, seed)
    with open(path, "w", newline="") as handle:
        handle.write(",".join(header) + "\n")
        for start in range(0, rows, 1000):
            part = block[start : start + 1000]
            cells = np.where(np.isnan(part), "", np.char.mod("%g", part)).astype(object)
            lines = np.hstack([cells, text[start : start + 1000]])
            handle.write("\n".join(",".join(row) for row in lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the generated wide table as CSV.")
    parser.add_argument("rows", type=int)
    parser.add_argument("numeric", type=int, help="numeric columns (6 categoricals and the target follow)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_wide(args.out, args.rows, args.numeric, args.seed)


if __name__ == "__main__":
    main()

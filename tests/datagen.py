"""A generated "real" table with the hard parts the bundled data lacks.

10 columns: missing cells in every feature (10 % by default), a categorical with ~4,000 levels
(Zipf-distributed, like ZIP codes or product IDs), an integer column with few values, an ID-like
column, heavy class imbalance, and a target that depends on several columns.

    python -m tests.datagen ROWS OUT.csv [--seed N]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def make_dataset(rows: int, seed: int = 0, missing: float = 0.10, levels: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.gamma(2.0, 12.0, rows).round(1)
    spend = rng.lognormal(3.0, 0.8, rows).round(2)
    calls = rng.poisson(1.5, rows)  # integer, few distinct values: stays numeric
    rating = rng.integers(1, 6, rows)
    region = rng.choice(["north", "south", "east", "west", "centre"], rows, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    plan = rng.choice(["basic", "plus", "pro"], rows, p=[0.6, 0.3, 0.1])
    # Half popular (Zipf), half spread over every level: ~4,000 distinct values at 100k rows.
    codes = np.where(rng.random(rows) < 0.5, rng.zipf(1.4, rows) % levels, rng.integers(0, levels, rows))
    product = np.array([f"P{v:05d}" for v in codes])
    device = rng.choice(["ios", "android", "web"], rows)
    score = rng.normal(0, 1, rows).round(3)
    logit = (
        -3.6
        + 0.5 * calls
        - 0.03 * tenure
        + 0.4 * (plan == "basic")
        + 0.6 * (region == "east")
        + 0.3 * score
        + 0.5 * np.isin(product, ["P00001", "P00002", "P00003"])
        - 0.1 * rating
    )
    churned = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "churned", "stayed")
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(rows)],
            "tenure_months": tenure,
            "monthly_spend": spend,
            "support_calls": calls,
            "rating": rating,
            "region": region,
            "plan": plan,
            "product": product,
            "device": device,
            "score": score,
            "status": churned,
        }
    )
    for column in frame.columns[1:-1]:  # every feature gets holes; the ID and the target do not
        holes = rng.random(rows) < missing
        frame[column] = frame[column].astype(object).where(~holes, "")
    return frame


def make_wide_dataset(rows: int, columns: int = 2000, categorical: int = 6, seed: int = 0) -> pd.DataFrame:
    """A wide table like real application data: ``columns`` features, all numeric but ``categorical``
    (a few levels each, 5 % missing); of the numeric ones nine in ten are 0/1 indicators and the rest
    continuous with 2 % missing cells. The binary target ("yes"/"no", about 20 % yes) depends on a
    handful of columns of each kind. Cells are strings, as a CSV gives them."""
    rng = np.random.default_rng(seed)
    numeric = columns - categorical
    frame: dict[str, np.ndarray] = {}
    continuous = rng.normal(0, 1, (rows, numeric)).round(3)
    indicator = rng.random((rows, numeric)) < rng.uniform(0.02, 0.5, numeric)
    is_flag = np.arange(numeric) % 10 != 0
    values = np.where(is_flag, indicator.astype(float), continuous)
    for j in range(numeric):
        column = values[:, j].astype(int) if is_flag[j] else values[:, j]
        text = column.astype(str).astype(object)
        if not is_flag[j]:
            text[rng.random(rows) < 0.02] = ""
        frame[f"{'flag' if is_flag[j] else 'x'}_{j:04d}"] = text
    levels = [f"L{k}" for k in range(8)]
    for j in range(categorical):
        cat = rng.choice(levels, rows).astype(object)
        cat[rng.random(rows) < 0.05] = ""
        frame[f"cat_{j}"] = cat
    logit = -1.8 + values[:, 0] + 0.8 * values[:, 1] - 0.8 * values[:, 2] + 0.6 * values[:, 10]
    if categorical:
        logit += 0.7 * (frame["cat_0"] == "L1")
    frame["target"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the generated dataset as CSV.")
    parser.add_argument("rows", type=int)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make_dataset(args.rows, args.seed).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()

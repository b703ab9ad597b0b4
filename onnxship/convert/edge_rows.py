"""Edge rows: generated records that stress the contract (unseen categories, missing values, far-out
numbers).

Built here, in the earliest stage that uses them: the quantize stage's search scores them, and the
parity gate (onnxship.verify.parity) scores the same kind of rows. Keeping them out of verify means
a change to the parity gate or its diagnosis re-runs only parity and what follows, not quantize.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from onnxship.contract.spec import NUMERIC_MISSING

UNSEEN_CATEGORY = "__unseen_in_training__"


def edge_rows(
    base: pd.Series, features: dict, reference: pd.DataFrame, max_rows: int = 1000
) -> tuple[pd.DataFrame, list[str]]:
    """Rows that stress the contract, built from one real row (raw strings, as in the CSV).

    Per column: an unseen category (categorical), a missing value, and a value far above and far
    below the observed range (numeric). One row per case while that makes at most ``max_rows`` rows;
    for a wider table each row applies one kind of case to a group of columns, so every column is
    still covered and the gate's cost stays linear in the number of columns.
    """
    changes: list[tuple[str, str, str]] = []  # (kind, column, value), in column order
    for spec in features["inputs"]:
        name = spec["name"]
        if spec["role"] == "categorical":
            changes.append(("unseen category", name, UNSEEN_CATEGORY))
        changes.append(("missing value", name, ""))
        if spec["role"] == "numeric":
            values = pd.to_numeric(reference[name].where(~reference[name].isin(NUMERIC_MISSING)))
            span = float(np.nanmax(np.abs(values))) if values.notna().any() else 1.0
            far = min(1000.0 * (span + 1.0), 1e30)  # far out, but still a finite float32
            changes.append(("far above range", name, repr(far)))
            changes.append(("far below range", name, repr(-far)))
    if len(changes) <= max_rows:
        groups = [[change] for change in changes]
    else:
        size = math.ceil(len(changes) / max_rows)
        kinds = dict.fromkeys(kind for kind, _, _ in changes)
        groups = []
        for kind in kinds:
            same = [change for change in changes if change[0] == kind]
            groups += [same[i : i + size] for i in range(0, len(same), size)]
    rows, cases = [], []
    for group in groups:
        row = base.copy()
        for _, column, value in group:
            row[column] = value
        rows.append(row)
        cases.append(f"{group[0][0]}: {', '.join(column for _, column, _ in group)}")
    return pd.DataFrame(rows).reset_index(drop=True), cases

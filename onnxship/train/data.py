"""The train stage's checks on a user's table: deciding the column roles, the bounds, the target.

Reading the CSV, ``Roles`` and the model's input frame are in onnxship.train.table, which every later
stage imports; they are re-exported here for the train stage. This module is train's alone, so an
edit to role inference re-runs train (and what its outputs feed), not every stage's code dependency.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from onnxship.contract.spec import CATEGORICAL_MISSING, NUMERIC_MISSING
from onnxship.core.errors import UserError
from onnxship.core.params import DataParams
from onnxship.train.table import Roles as Roles  # re-exported with read_csv and features
from onnxship.train.table import distinct_numbers
from onnxship.train.table import features as features
from onnxship.train.table import read_csv as read_csv

# An unlisted column is numeric-looking when at least this share of its present cells are numbers
# under the contract's rule. With a few text cells among them it is most likely a dirty numeric
# column: treating it as categorical would one-hot-encode its numbers, so it is an error instead.
NUMERIC_LOOKING = 0.95


def _is_numeric(column: pd.Series, name: str) -> bool:
    """True if every present cell is a number; an error if a few are not (see NUMERIC_LOOKING).
    Each distinct cell is parsed once (``table.distinct_numbers``): linear in the rows."""
    cells = column.to_numpy(dtype=object).tolist()
    numbers, refused = distinct_numbers(set(cells))
    if all(cell in NUMERIC_MISSING for cell in numbers):
        return False
    # A number beyond float32 is a number: refused in table._numbers.
    bad = {cell for cell, reason in refused.items() if "float32" not in reason}
    if not bad:
        return True
    counts = Counter(cells)
    present = sum(n for cell, n in counts.items() if cell not in NUMERIC_MISSING)
    bad_cells = sum(counts[cell] for cell in bad)
    if bad_cells > (1 - NUMERIC_LOOKING) * present:
        return False  # text with some numbers in it: a categorical column
    row = next(i for i, cell in enumerate(cells) if cell in bad)
    raise UserError(
        f"column '{name}' looks numeric but {bad_cells} of its {present} values are not numbers, "
        f"the first {column.iloc[row]!r} in data row {row + 1}: clean them (an empty cell or NA means "
        "missing), or list the column under data.categorical to treat it as text"
    )


def infer_roles(frame: pd.DataFrame, params: DataParams) -> Roles:
    """Numbers -> numeric, anything else -> categorical, unless params.yaml lists them."""
    named = set(params.numeric or []) | set(params.categorical or []) | set(params.drop)
    for name in sorted(named | {params.target}):
        if name not in frame.columns:
            close = [c for c in frame.columns if c.lower() == name.lower()]
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(f"column '{name}' from params.yaml is not in the CSV{hint}")
    overlap = set(params.numeric or []) & set(params.categorical or [])
    if overlap:
        raise UserError(f"columns {sorted(overlap)} are listed as both numeric and categorical")
    numeric, categorical, id_like = [], [], []
    for name in frame.columns:
        if name == params.target or name in params.drop:
            continue
        if params.numeric and name in params.numeric:
            numeric.append(name)
        elif params.categorical and name in params.categorical:
            categorical.append(name)
        elif params.numeric is not None and params.categorical is not None:
            continue  # both lists given: they are the complete feature set
        elif _is_numeric(frame[name], name):
            numeric.append(name)
        elif _is_id_like(frame[name]):
            id_like.append(name)
        else:
            categorical.append(name)
    if not numeric and not categorical:
        raise UserError("no feature columns left after removing the target and data.drop")
    return Roles(numeric=numeric, categorical=categorical, id_like=id_like)


def check_bounds(frame: pd.DataFrame, params: DataParams) -> None:
    """data.max_columns, before any work on the columns."""
    if len(frame.columns) > params.max_columns:
        raise UserError(
            f"{params.path} has {len(frame.columns):,} columns, more than data.max_columns "
            f"({params.max_columns:,}): check the export (a transposed table?), or raise data.max_columns"
        )


def check_category_lengths(frame: pd.DataFrame, roles: Roles, params: DataParams) -> None:
    """data.max_category_chars: every category is written into model.onnx and onnx_features.json, so
    one 50 MB cell (free text, a broken quote) would bloat both and the export's memory."""
    for name in roles.categorical:
        lengths = frame[name].str.len().to_numpy()
        if len(lengths) and lengths.max() > params.max_category_chars:
            row = int(lengths.argmax())
            raise UserError(
                f"categorical column '{name}' has a value of {int(lengths[row]):,} characters in data row "
                f"{row + 1}, longer than data.max_category_chars ({params.max_category_chars:,}): list "
                "the column under data.drop if it is free text, or raise data.max_category_chars"
            )


def _is_id_like(column: pd.Series) -> bool:
    """A string column whose values are (nearly) all distinct: an identifier, not a category.

    One-hot encoding it would only memorise rows. List it under data.categorical to keep it.
    """
    present = column[column != CATEGORICAL_MISSING]
    return len(present) >= 100 and present.nunique() >= 0.95 * len(present)


def target(frame: pd.DataFrame, params: DataParams) -> np.ndarray:
    """1 where the target equals the positive label, else 0; exactly two classes required."""
    column = frame[params.target]
    if (column == "").any():
        raise UserError(f"target '{params.target}' is empty in {(column == '').sum()} rows; drop those rows")
    values = sorted(column.unique())
    label = str(params.positive_label)
    if label not in values:
        raise UserError(
            f"positive label {label!r} is not a value of '{params.target}' (values: {values[:10]}); "
            "set data.positive_label"
        )
    if len(values) != 2:
        raise UserError(
            f"target '{params.target}' must have exactly two values, found {len(values)}: {values[:10]}"
        )
    return (column == label).to_numpy().astype(np.int64)


def all_missing_columns(frame: pd.DataFrame, roles: Roles) -> list[str]:
    """Feature columns without a single value: nothing can be learned from them."""
    numeric = [n for n in roles.numeric if set(frame[n].tolist()) <= NUMERIC_MISSING]
    categorical = [n for n in roles.categorical if (frame[n] == CATEGORICAL_MISSING).all()]
    return numeric + categorical

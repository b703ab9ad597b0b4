"""The table every stage reads: a user's CSV as strings, the column roles, and the model's input
frame built from them.

The model contract is the same for scikit-learn and ONNX: numeric columns are float32 with NaN for
a missing value; categorical columns are strings with "" for a missing value. Numbers are read with
the contract's own rule (``onnxship.contract.encode.number_converter``), the one every client uses.

Deciding the roles is the train stage's alone (onnxship.train.data); export, quantize, parity and
the benchmark import only this module, so a change to role inference re-runs train and what its
outputs feed, not every stage's code dependency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from onnxship.contract.csvfile import open_csv
from onnxship.contract.encode import InvalidRecord, number_converter, numbers_converter
from onnxship.contract.spec import CATEGORICAL_MISSING, NUMERIC_MISSING
from onnxship.core.errors import UserError

to_number = number_converter()
to_numbers = numbers_converter(to_number)
_MISSING = frozenset(NUMERIC_MISSING)


@dataclass(frozen=True)
class Roles:
    """Which columns feed the model, in CSV order, and how."""

    numeric: list[str]
    categorical: list[str]
    id_like: list[str] = field(default_factory=list)  # dropped: a distinct string in (nearly) every row

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    def to_dict(self) -> dict[str, list[str]]:
        return {"numeric": self.numeric, "categorical": self.categorical, "id_like": self.id_like}


def read_csv(path: str | Path) -> pd.DataFrame:
    """Every cell as the string written in the file, so nothing is guessed twice; read by the rules
    the scorer reads a CSV with (onnxship.contract.csvfile), with the same messages."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"data file {path} is a folder: set data.path in params.yaml to your CSV")
    if not path.is_file():
        raise UserError(f"data file {path} not found: set data.path in params.yaml to your CSV")
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:  # no read permission, or another OS-level failure
        raise UserError(
            f"data file {path} cannot be read ({exc.strerror}): give the user running the stage read access"
        ) from None
    with handle:
        table = open_csv(handle, path)
        _check_header(path, table.header)
        rows = []
        for _, _, cells in table.rows():
            if isinstance(cells, InvalidRecord):
                raise UserError(f"{path} {cells}")
            rows.append(cells)
    if not rows:
        raise UserError(f"{path} has a header but no data rows")
    # One 2-D object array built in C, wrapped by the frame without a copy: linear in the cells, with
    # a small constant (a frame built from the list of rows, or column by column, costs 2-4x more).
    return pd.DataFrame(np.array(rows, dtype=object), columns=table.header, copy=False)


def _check_header(path: Path, header: list[str]) -> None:
    """What training asks of the header beyond the scorer: a comma separator and a name per column."""
    if len(header) == 1:
        for separator in (";", "\t", "|"):
            if separator in header[0]:
                raise UserError(f"{path} looks like a {separator!r}-separated file: save it comma-separated")
    blank = [i for i, name in enumerate(header, 1) if not name.strip()]
    if blank:
        # pandas would name it "Unnamed: N", a name no client's file has.
        raise UserError(
            f"{path} has an empty column name (column {blank[0]} of the header): name every column"
        )


def features(
    frame: pd.DataFrame, roles: Roles, parsed: Mapping[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """The model's input frame: float32 numbers (NaN if missing) and strings ("" if missing), in
    ``roles.features`` order. ``parsed`` holds numeric columns already read by ``numbers`` (role
    inference reads them once). The numbers fill one float32 block, column by column, which the
    frame wraps without a copy: memory stays at one float32 per numeric cell."""
    parsed = parsed or {}
    block = np.empty((len(frame), len(roles.numeric)), dtype=np.float32, order="F")
    for j, name in enumerate(roles.numeric):
        block[:, j] = _numbers(frame[name], name, parsed.get(name))
    numeric = pd.DataFrame(block, index=frame.index, columns=roles.numeric, copy=False)
    categorical = pd.DataFrame(
        {
            name: frame[name].where(frame[name].notna(), CATEGORICAL_MISSING).astype(str).astype(object)
            for name in roles.categorical
        },
        index=frame.index,
    )
    return pd.concat([numeric, categorical], axis=1, copy=False)


def numbers(column: pd.Series) -> np.ndarray | None:
    """A column of cells as float64 (NaN where a missing token) under the contract's rule, or None
    if a cell is not a number within the float32 range (``_numbers`` then finds and names it).

    Each distinct cell is read once, by the contract's column converter: linear in the rows (one
    hash pass), and a 0/1 indicator column costs two conversions, not one per row.
    """
    try:
        codes, uniques = pd.factorize(column.to_numpy(dtype=object))
    except TypeError:  # an unhashable cell (a list from JSON): no number, named by _named_refusal
        return None
    distinct = uniques.tolist()
    present = [i for i, value in enumerate(distinct) if value not in _MISSING]
    parsed = np.full(len(distinct) + 1, np.nan)  # the last for code -1 (None or NaN: missing)
    if present:
        try:
            parsed[present] = to_numbers([distinct[i] for i in present])
        except ValueError:
            return None
    return parsed[codes]


def _numbers(column: pd.Series, name: str, values: np.ndarray | None = None) -> np.ndarray:
    """A numeric column as float32, read with the contract's rule; a UserError names a bad cell."""
    if values is None:
        values = numbers(column) if column.dtype == object else column.to_numpy(dtype=np.float64)
    if values is None:
        values = _named_refusal(column, name)
    with np.errstate(over="ignore"):  # an overflow becomes inf, refused just below
        values32 = values.astype(np.float32, copy=False)
    infinite = np.flatnonzero(np.isinf(values32))
    if len(infinite):
        row = int(infinite[0])
        raise UserError(
            f"numeric column '{name}' has an infinite or out-of-float32-range value "
            f"{column.iloc[row]!r} (data row {row + 1}); replace it with a finite number or leave it empty"
        )
    return values32


def _named_refusal(column: pd.Series, name: str) -> np.ndarray:
    """The first refused cell (in the order of its distinct values) as a UserError with its row."""
    uniques, inverse = np.unique(np.array([str(v) for v in column.tolist()]), return_inverse=True)
    parsed = np.empty(len(uniques), dtype=np.float64)
    for i, value in enumerate(uniques.tolist()):
        try:
            parsed[i] = to_number(value)
        except ValueError as exc:
            row = int(np.flatnonzero(inverse == i)[0])
            problem = "an infinite or out-of-float32-range value" if "float32" in str(exc) else "text"
            fix = (
                "replace it with a finite number or leave it empty"
                if problem != "text"
                else "clean it or list the column under data.categorical"
            )
            raise UserError(
                f"numeric column '{name}' has {problem} {value!r} (data row {row + 1}); {fix}"
            ) from None
    return parsed[inverse]

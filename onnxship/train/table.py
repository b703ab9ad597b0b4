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

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from onnxship.contract.encode import number_converter
from onnxship.contract.spec import CATEGORICAL_MISSING
from onnxship.core.errors import UserError

to_number = number_converter()


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
    """Read every cell as the string written in the file, so nothing is guessed twice."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file {path} not found: set data.path in params.yaml to your CSV")
    try:
        with open(path, "rb") as handle:
            raw_head = handle.read(1 << 16)
            if b"\n" not in raw_head:
                raw_head += handle.readline()  # a header longer than 64 KiB: read it whole
    except OSError as exc:  # no read permission, or another OS-level failure
        raise UserError(
            f"data file {path} cannot be read ({exc.strerror}): give the user running the stage read access"
        ) from None
    if b"\x00" in raw_head:
        raise UserError(f"{path} is not a text CSV file (binary content): export your data as UTF-8 CSV")
    head = raw_head.decode("utf-8", errors="ignore")
    header = next(csv.reader(io.StringIO(head)), None)
    if not header:
        raise UserError(f"{path} is empty: it needs a header row and data rows")
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
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise UserError(f"{path} has duplicate column names {duplicates}: rename them")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text: re-save it as a UTF-8 CSV") from None
    except (pd.errors.ParserError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{path} is not a valid CSV ({first})") from None
    if frame.empty:
        raise UserError(f"{path} has a header but no data rows")
    return frame


def features(frame: pd.DataFrame, roles: Roles) -> pd.DataFrame:
    """The model's input frame: float32 numbers (NaN if missing) and strings ("" if missing)."""
    out = {}
    for name in roles.numeric:
        out[name] = _numbers(frame[name], name)
    for name in roles.categorical:
        column = frame[name]
        out[name] = column.where(column.notna(), CATEGORICAL_MISSING).astype(str).astype(object)
    return pd.DataFrame(out, index=frame.index)[roles.features]


def _numbers(column: pd.Series, name: str) -> pd.Series:
    """A numeric column as float32, read with the contract's rule (each distinct value once)."""
    if column.dtype == object:
        uniques, inverse = np.unique(column.to_numpy(dtype=object).astype(str), return_inverse=True)
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
        values = parsed[inverse]
    else:
        values = column.to_numpy(dtype=np.float64)
    with np.errstate(over="ignore"):  # an overflow becomes inf, refused just below
        values32 = values.astype(np.float32)
    infinite = np.flatnonzero(np.isinf(values32))
    if len(infinite):
        row = int(infinite[0])
        raise UserError(
            f"numeric column '{name}' has an infinite or out-of-float32-range value "
            f"{column.iloc[row]!r} (data row {row + 1}); replace it with a finite number or leave it empty"
        )
    return pd.Series(values32, index=column.index, name=name)

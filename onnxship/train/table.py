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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from onnxship.contract.encode import NUMBER_CHARS, number_converter
from onnxship.contract.spec import CATEGORICAL_MISSING, FLOAT32_LIMIT, NUMERIC_MISSING
from onnxship.core.errors import UserError

to_number = number_converter()
NUMBER_TEXT = frozenset(NUMBER_CHARS)


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
    """The model's input frame: float32 numbers (NaN if missing) and strings ("" if missing). The
    numbers are one float32 block (one pandas block, not one per column: a wide table's columns are
    then selected and handed to scikit-learn without a copy per column)."""
    numbers = pd.DataFrame(_number_block(frame, roles.numeric), index=frame.index, columns=roles.numeric)
    texts = {}
    for name in roles.categorical:
        column = frame[name]
        texts[name] = column.where(column.notna(), CATEGORICAL_MISSING).astype(str).astype(object)
    return pd.concat([numbers, pd.DataFrame(texts, index=frame.index)], axis=1)[roles.features]


# Columns parsed together: their distinct cells share one parse, and the list of their cells stays
# a few tens of MB however many columns the table has.
BLOCK_COLUMNS = 256


def _number_block(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The numeric columns ``names`` as one float32 array [rows, len(names)], read with the
    contract's rule: each distinct cell of a group of columns parsed once, then one lookup per cell.
    A refused or out-of-range cell is reported by ``_numbers``, column by column, as before."""
    out = np.empty((len(frame), len(names)), dtype=np.float32)
    for start in range(0, len(names), BLOCK_COLUMNS):
        group = names[start : start + BLOCK_COLUMNS]
        part = frame[group]
        if not all(dtype is np.dtype(object) for dtype in part.dtypes):
            out[:, start : start + len(group)] = np.column_stack([_numbers(part[n], n) for n in group])
            continue
        cells = part.to_numpy(dtype=object).ravel(order="F").tolist()
        if any(type(cell) is not str for cell in set(cells)):  # None or NaN from a frame of records
            cells = [str(cell) for cell in cells]
        numbers, refused = distinct_numbers(set(cells))
        values = None
        if not refused:
            values = np.fromiter(map(numbers.__getitem__, cells), dtype=np.float64, count=len(cells))
            with np.errstate(over="ignore"):  # an overflow becomes inf, refused by _numbers
                values = values.astype(np.float32).reshape(len(group), len(frame)).T
        if values is None or np.isinf(values).any():
            for name in group:  # the first column with a bad cell raises, naming it
                _numbers(part[name], name)
        out[:, start : start + len(group)] = values
    return out


def distinct_numbers(cells: Iterable[str]) -> tuple[dict[str, float], dict[str, str]]:
    """The contract's number rule over the distinct ``cells``: ({cell: its number, NaN if missing},
    {cell: why it is refused}). One C-level float() over them when they are plain number text, the
    common case and exactly what the contract accepts (see encode.NUMBER_CHARS); else ``to_number``
    one by one, which decides and says why."""
    present = [cell for cell in cells if cell not in NUMERIC_MISSING]
    numbers = dict.fromkeys(set(cells) - set(present), np.nan)
    if NUMBER_TEXT.issuperset("".join(present)):
        try:
            parsed = list(map(float, present))
        except ValueError:  # "1.2.3", "+-1": float refuses what the pattern refuses; say why below
            parsed = None
        if parsed is not None and all(-FLOAT32_LIMIT < value < FLOAT32_LIMIT for value in parsed):
            return numbers | dict(zip(present, parsed, strict=True)), {}
    refused = {}
    for cell in present:
        try:
            numbers[cell] = to_number(cell)
        except ValueError as exc:
            refused[cell] = str(exc)
    return numbers, refused


def _numbers(column: pd.Series, name: str) -> pd.Series:
    """A numeric column as float32, read with the contract's rule (each distinct value once: time
    linear in the rows, a hash and a lookup per cell)."""
    if column.dtype == object:
        cells = column.to_numpy(dtype=object).tolist()
        if any(type(cell) is not str for cell in set(cells)):  # None or NaN from a frame of records
            cells = [str(cell) for cell in cells]
        numbers, refused = distinct_numbers(set(cells))
        if refused:
            value = min(refused)  # the smallest refused value, as a sorted reading would meet it first
            row = cells.index(value)
            problem = "an infinite or out-of-float32-range value" if "float32" in refused[value] else "text"
            fix = (
                "replace it with a finite number or leave it empty"
                if problem != "text"
                else "clean it or list the column under data.categorical"
            )
            raise UserError(f"numeric column '{name}' has {problem} {value!r} (data row {row + 1}); {fix}")
        values = np.fromiter(map(numbers.__getitem__, cells), dtype=np.float64, count=len(cells))
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

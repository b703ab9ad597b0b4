"""Reading a user's CSV, deciding column roles, and shaping rows for the model.

The model contract is the same for scikit-learn and ONNX: numeric columns are float32 with NaN for
a missing value; categorical columns are strings with "" for a missing value. Numbers are read with
the contract's own rule (``onnxship.contract.encode.number_converter``), the one every client uses.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from onnxship.contract.encode import number_converter
from onnxship.contract.spec import CATEGORICAL_MISSING, NUMERIC_MISSING
from onnxship.core.errors import UserError
from onnxship.core.params import DataParams

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


# An unlisted column is numeric-looking when at least this share of its present cells are numbers
# under the contract's rule. With a few text cells among them it is most likely a dirty numeric
# column: treating it as categorical would one-hot-encode its numbers, so it is an error instead.
NUMERIC_LOOKING = 0.95


def _is_numeric(column: pd.Series, name: str) -> bool:
    """True if every present cell is a number; an error if a few are not (see NUMERIC_LOOKING)."""
    counts = column[~column.isin(NUMERIC_MISSING)].value_counts(sort=False)
    if len(counts) == 0:
        return False
    bad = []
    for value in counts.index:
        try:
            to_number(value)
        except ValueError as exc:
            if "float32" not in str(exc):  # a number beyond float32 is a number: refused in _numbers
                bad.append(value)
    if not bad:
        return True
    bad_cells = int(counts[bad].sum())
    if bad_cells > (1 - NUMERIC_LOOKING) * counts.sum():
        return False  # text with some numbers in it: a categorical column
    row = int(np.flatnonzero(column.isin(bad).to_numpy())[0])
    raise UserError(
        f"column '{name}' looks numeric but {bad_cells} of its {int(counts.sum())} values are not numbers, "
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
    numeric = [n for n in roles.numeric if frame[n].isin(NUMERIC_MISSING).all()]
    categorical = [n for n in roles.categorical if (frame[n] == CATEGORICAL_MISSING).all()]
    return numeric + categorical


def negative_label(frame: pd.DataFrame, params: DataParams) -> str:
    """The target value that is not the positive label (call after ``target`` has validated it)."""
    return next(v for v in sorted(frame[params.target].unique()) if v != str(params.positive_label))

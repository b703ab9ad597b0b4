"""The one encoder: a raw record (a CSV row's strings, or a JSON object) -> the model's input tensors.

Everything that feeds model.onnx goes through here: the standalone scorer, the parity gate, the
benchmark, the Spark job; training reads its numbers with the same rule (``number_converter``), so
what the model was fitted on and what a client sends are parsed alike. The rules are contract v1's
(``onnxship.contract.spec``, documented in docs/contract.md), read from onnx_features.json.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from onnxship.contract import spec
from onnxship.contract.layout import Layout
from onnxship.core.errors import UserError

# For the v1 number pattern a cheaper equivalent check is used: a string made only of these
# characters is a number under the pattern exactly when float() accepts it (float also takes "1_000",
# "inf", "nan" and Unicode digits or spaces, none of which is made of these characters).
NUMBER_CHARS = " \t0123456789.eE+-"
NAN = float("nan")


class InvalidRecord(UserError):
    """One input record breaks the contract; ``row`` is its 1-based number in the input."""

    def __init__(self, row: int, column: str | None, reason: str, line: int | None = None) -> None:
        self.row, self.column, self.reason, self.line = row, column, reason, line
        where = f"row {row}" + (f" (line {line})" if line is not None else "")
        super().__init__(f"{where}, column '{column}': {reason}" if column else f"{where}: {reason}")

    def to_dict(self) -> dict:
        return {"row": self.row, "line": self.line, "column": self.column, "reason": self.reason}


def number_converter(
    missing_tokens: Iterable[str] = spec.NUMERIC_MISSING, number_pattern: str = spec.NUMBER_PATTERN
) -> Callable[[Any], float]:
    """The contract's rule for a numeric cell, as a function: value -> float64 (NaN if missing);
    ValueError says why a value is refused. float32 rounding happens when the tensor is built.

    A closure over locals, as this runs once per numeric field of every record.
    """
    missing = frozenset(missing_tokens)
    listed = sorted(missing)
    if number_pattern == spec.NUMBER_PATTERN:

        def is_number_text(text: str) -> bool:
            return not text.strip(NUMBER_CHARS)

    else:  # a contract with another pattern: follow it as written
        compiled = re.compile(number_pattern)

        def is_number_text(text: str) -> bool:
            return compiled.fullmatch(text) is not None

    def to_number(value: Any) -> float:
        kind = type(value)
        if kind is str:
            if value in missing:
                return NAN
            try:
                if not is_number_text(value):
                    raise ValueError
                number = float(value)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a number: write a decimal number such as 12.5, or one of "
                    f"{listed} for a missing value"
                ) from None
        elif kind is float:
            if value != value:  # NaN is the missing value itself
                return NAN
            number = value
        elif kind is int:
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
        elif value is None:
            return NAN
        elif isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
            number = float(value)  # numpy scalars and other real numbers
            if number != number:
                return NAN
        else:
            raise ValueError(f"expected a number, text or null, got {type(value).__name__} {value!r}")
        if not -spec.FLOAT32_LIMIT < number < spec.FLOAT32_LIMIT:
            raise ValueError(f"{value!r} is infinite or beyond the float32 range (about ±3.4e38)")
        return number

    return to_number


def numbers_converter(
    to_number: Callable[[Any], float],
    missing_tokens: Iterable[str] = spec.NUMERIC_MISSING,
    number_pattern: str = spec.NUMBER_PATTERN,
) -> Callable[[list], list[float] | np.ndarray]:
    """``to_number`` over a whole column, faster when every cell is number text (the common case).

    For the v1 pattern, a column of strings that are not missing tokens and are made only of
    NUMBER_CHARS converts with the builtin float in one C loop: for such text float() accepts exactly
    what the pattern accepts (see NUMBER_CHARS). Anything else, including a value float() refuses or
    one out of the float32 range, goes cell by cell through ``to_number``, which decides or raises.
    """
    missing = frozenset(missing_tokens)
    allowed = frozenset(NUMBER_CHARS)
    fast = number_pattern == spec.NUMBER_PATTERN

    def to_numbers(column: list) -> list[float] | np.ndarray:
        text = fast and all(type(v) is str for v in column) and missing.isdisjoint(column)
        if text and allowed.issuperset("".join(column)):
            try:
                values = np.array(list(map(float, column)), dtype=np.float64)
            except ValueError:
                values = None
            if values is not None and bool((np.abs(values) < spec.FLOAT32_LIMIT).all()):
                return values
        return [to_number(v) for v in column]

    return to_numbers


def to_category(value: Any) -> str:
    """A categorical cell as the string the model sees ("" if missing; unseen ones unchanged)."""
    if type(value) is str:
        return value  # "" is already the missing value; an unseen category passes through
    if value is None or (type(value) is float and value != value):
        return spec.CATEGORICAL_MISSING
    raise ValueError(
        f"expected text or null, got {type(value).__name__} {value!r}: categories are strings "
        '(write it as text, e.g. "3" rather than 3)'
    )


class Encoder:
    """Records -> ONNX feeds, following one onnx_features.json (contract v1 or v2).

    ``values`` checks and converts one record; ``feeds`` turns converted rows into the graph's inputs
    (``layout.pack``: one [n, 1] array per input in v1, the packed tensors in v2); ``slots``/``fill``
    is the per-record path of an online service, which refills input arrays allocated once instead
    of building new ones per call.
    """

    def __init__(self, features: Mapping[str, Any]) -> None:
        numeric = features["encoding"]["numeric"]
        to_number = number_converter(numeric["missing_tokens"], numeric["number_pattern"])
        self.inputs: list[dict] = list(features["inputs"])
        self.layout = Layout(features)  # the one place that knows v1's inputs from v2's tensors
        # (field name, graph input it goes to, converter, dtype) in input order: the per-record hot loop.
        self.specs: list[tuple[str, str, Callable[[Any], Any], Any]] = [
            (
                spec_["name"],
                self.layout.places[i][0],
                to_number if spec_["dtype"] == "float32" else to_category,
                np.float32 if spec_["dtype"] == "float32" else object,
            )
            for i, spec_ in enumerate(self.inputs)
        ]
        # Whole-column converters for ``encode``: the same decisions as the per-cell ones.
        to_numbers = numbers_converter(to_number, numeric["missing_tokens"], numeric["number_pattern"])
        self._columns = [
            (name, onnx_name, to_numbers if dtype is np.float32 else _categories, dtype)
            for name, onnx_name, _, dtype in self.specs
        ]

    @property
    def names(self) -> list[str]:
        return [name for name, _, _, _ in self.specs]

    def input_types(self) -> dict[str, str]:
        """ONNX type of each graph input, as onnxruntime names it."""
        return self.layout.input_types()

    def values(self, record: Any, row: int = 1, line: int | None = None) -> list:
        """The record's converted values in input order; InvalidRecord names the first bad field."""
        _require_mapping(record, row, line)
        return [_field(record, name, convert, row, line) for name, _, convert, _ in self.specs]

    def feeds(self, rows: Sequence[Sequence]) -> dict[str, np.ndarray]:
        """ONNX inputs from rows of converted values (``values``)."""
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in self.specs]
        return self.layout.pack(columns)

    def encode(self, records: Iterable[Any]) -> dict[str, np.ndarray]:
        """Feeds for a batch of records (rows numbered from 1 in errors).

        Column by column, one tight loop per input (about 1.5x faster than row by row at 1,024
        records: docs/serving-speed.md), with the same converters, so the same values. A refused
        value or a missing field sends the batch through the row-by-row path, which raises the
        InvalidRecord it always did (the first bad field of the first bad row).
        """
        records = records if isinstance(records, list) else list(records)
        if all(type(record) is dict for record in records):
            try:
                return self.layout.pack(
                    [convert([r[name] for r in records]) for name, _, convert, _ in self._columns]
                )
            except (KeyError, ValueError):
                pass
        return self.feeds([self.values(record, row) for row, record in enumerate(records, 1)])

    def slots(self) -> tuple[dict[str, np.ndarray], list]:
        """Input arrays for one record, and the (field, [1, 1] view, converter) list ``fill`` uses."""
        feeds = self.layout.empty(1)
        views = self.layout.views(feeds)
        return feeds, [
            (name, view, convert) for (name, _, convert, _), view in zip(self.specs, views, strict=True)
        ]

    @staticmethod
    def fill(record: Any, slots: list) -> None:
        """Convert ``record`` into the arrays of ``slots`` in place (the record is row 1 in errors)."""
        _require_mapping(record, 1, None)
        for name, array, convert in slots:
            array[0, 0] = _field(record, name, convert, 1, None)


def _categories(column: list) -> list[str]:
    return [to_category(v) for v in column]


def _require_mapping(record: Any, row: int, line: int | None) -> None:
    if not isinstance(record, Mapping):
        got = type(record).__name__
        raise InvalidRecord(row, None, f"expected an object of field: value, got {got}", line)


def _field(record: Mapping, name: str, convert: Callable[[Any], Any], row: int, line: int | None) -> Any:
    """One field of a record, converted; a missing field or a refused value is an InvalidRecord."""
    try:
        value = record[name]
    except KeyError:
        raise InvalidRecord(
            row, name, "the field is missing: send it (null or an empty value means missing)", line
        ) from None
    try:
        return convert(value)
    except ValueError as exc:
        raise InvalidRecord(row, name, str(exc), line) from None

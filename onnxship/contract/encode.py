"""The one encoder: a raw record (a CSV row's strings, or a JSON object) -> the model's input tensors.

Everything that feeds model.onnx goes through here: the standalone scorer, the parity gate, the
benchmark, the Spark job; training reads its numbers with the same rule (``number_converter``), so
what the model was fitted on and what a client sends are parsed alike. The rules are contract v1's
(``onnxship.contract.spec``, documented in docs/contract.md), read from onnx_features.json.
"""

from __future__ import annotations

import itertools
import math
import numbers
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxship.contract import columns, spec
from onnxship.contract.columns import TextCells
from onnxship.contract.layout import Layout
from onnxship.core.errors import UserError

# For the v1 number pattern a cheaper equivalent check is used: a string made only of these
# characters is a number under the pattern exactly when float() accepts it (float also takes "1_000",
# "inf", "nan" and Unicode digits or spaces, none of which is made of these characters).
NUMBER_CHARS = " \t0123456789.eE+-"
NAN = float("nan")
SMALL = 64  # cells: below this many, a column is read cell by cell


class InvalidRecord(UserError):
    """One input record breaks the contract; ``row`` is its 1-based number in the input."""

    def __init__(self, row: int, column: str | None, reason: str, line: int | None = None) -> None:
        self.row, self.column, self.reason, self.line = row, column, reason, line
        where = f"row {row}" + (f" (line {line})" if line is not None else "")
        named = column is not None  # an empty name ("") is still a column
        super().__init__(f"{where}, column '{column}': {reason}" if named else f"{where}: {reason}")

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
                    f"{shown(value)} is not a number: write a decimal number such as 12.5, or one of "
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
            raise ValueError(f"expected a number, text or null, got {type(value).__name__} {shown(value)}")
        if not -spec.FLOAT32_LIMIT < number < spec.FLOAT32_LIMIT:
            raise ValueError(f"{shown(value)} is infinite or beyond the float32 range (about ±3.4e38)")
        return number

    return to_number


def numbers_converter(
    to_number: Callable[[Any], float],
    missing_tokens: Iterable[str] = spec.NUMERIC_MISSING,
    number_pattern: str = spec.NUMBER_PATTERN,
) -> Callable[[list], np.ndarray]:
    """``to_number`` over a whole column: a list of cells -> float64 array (NaN if missing); the
    first refused cell raises ``to_number``'s ValueError. The same values and verdicts, whole-column
    speed (``NumberRule.column``)."""
    missing = frozenset(missing_tokens)
    return NumberRule(to_number, missing, vectorised(missing, number_pattern)).column


def vectorised(missing: frozenset[str], number_pattern: str) -> bool:
    """Whether the vectorised reader reads cells as the rule does: the default number syntax, and no
    missing token it would read as a number (a contract may list "-999")."""
    return number_pattern == spec.NUMBER_PATTERN and not columns.reads_as_number(missing)


@dataclass(frozen=True)
class NumberRule:
    """The contract's number rule over many cells: cells the vectorised reader decides
    (``columns.parse_numbers``: plain decimals, "" and "-") are read at once; the rest, and every
    refusal with its message, go through ``to_number``, the per-cell definition. ``vector`` is False
    for a contract with another number pattern or a numeric missing token (``vectorised``): then
    every cell goes through ``to_number``."""

    to_number: Callable[[Any], float]
    missing: frozenset[str]
    vector: bool

    def column(self, column: list) -> np.ndarray:
        """A list of cells (CSV text or JSON values) -> float64."""
        kinds = set(map(type, column))
        if len(column) < SMALL:
            pass  # numpy's fixed cost per call outweighs a few cells
        elif kinds <= {float, int}:
            try:
                values = np.array(column, dtype=np.float64)
            except OverflowError:  # an int past float64's range: to_number says so
                values = None
            if values is not None and not (np.abs(values) >= spec.FLOAT32_LIMIT).any():
                return values
        elif kinds == {str} and self.vector:
            cells = columns.string_cells(column)
            if cells is not None:
                return self.texts(*cells, lambda i: column[i])
        return np.array([self.to_number(value) for value in column], dtype=np.float64)

    def texts(
        self, data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, text: Callable[[int], str]
    ) -> np.ndarray:
        """Cells given as spans of one byte buffer -> float64; ``text(i)`` is cell i as a string,
        for the cells the vectorised reader leaves to ``to_number``."""
        if self.vector:
            values, decided = columns.parse_numbers(data, starts, lengths, self.missing)
        else:
            values, decided = np.empty(len(starts)), np.zeros(len(starts), dtype=bool)
        for i in np.flatnonzero(~decided).tolist():
            values[i] = self.to_number(text(i))
        return values


def to_category(value: Any) -> str:
    """A categorical cell as the string the model sees ("" if missing; unseen ones unchanged)."""
    if type(value) is str:
        if "\x00" in value:  # ONNX Runtime's string tensors end at a NUL in some clients: refused
            raise ValueError(f"{shown(value)} holds a NUL character (\\x00), which a category cannot hold")
        return value  # "" is already the missing value; an unseen category passes through
    if value is None or (type(value) is float and value != value):
        return spec.CATEGORICAL_MISSING
    raise ValueError(
        f"expected text or null, got {type(value).__name__} {shown(value)}: categories are strings "
        '(write it as text, e.g. "3" rather than 3)'
    )


def shown(value: Any, limit: int = 60) -> str:
    """A value as messages quote it: its repr, cut short (a 1 MB cell makes no readable message);
    an infinite JSON number (1e400, 10**400) as what it was."""
    if type(value) in (int, float) and _infinite(value):
        return "a number too large for float64 (such as 1e400)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _infinite(number: float) -> bool:
    try:
        return not math.isfinite(number)
    except OverflowError:  # an int beyond float64
        return True


class Encoder:
    """Records -> ONNX feeds, following one onnx_features.json (contract v1 or v2).

    A batch is encoded column by column: ``encode`` turns records (dicts, or a CSV chunk as
    TextCells) into the graph's feeds (one [n, 1] array per input in v1, the packed tensors in v2:
    ``layout``). ``values`` checks and converts one record, ``feeds`` stacks such rows;
    ``slots``/``fill`` is the per-record path of an online service, which refills input arrays
    allocated once instead of building new ones per call.
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
        # The same rule over whole columns: the same values and verdicts as ``to_number``.
        missing = frozenset(numeric["missing_tokens"])
        self.numbers = NumberRule(to_number, missing, vectorised(missing, numeric["number_pattern"]))
        # The inputs (positions in ``inputs``) in the column order of the graph's blocks (``layout``).
        self._number_inputs, self._text_inputs = self.layout.order("float32"), self.layout.order("string")

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

    def encode(self, batch: Iterable[Any] | TextCells) -> dict[str, np.ndarray]:
        """The graph's feeds for a batch of records: dicts (rows numbered from 1 in errors) or a CSV
        chunk (TextCells, with its own row numbers).

        Whole columns at once (docs/serving-speed.md); a CSV chunk's numbers straight into the
        packed block. Anything the column path refuses (a bad value, a missing field, a record that
        is not a dict) sends the batch through the row-by-row path, which raises the InvalidRecord it
        always did: the first bad field of the first bad row.
        """
        records = batch if isinstance(batch, list | TextCells) else list(batch)
        try:
            if isinstance(records, TextCells):
                return self._text_feeds(records)
            if all(isinstance(record, dict) for record in records):
                return self._record_feeds(records)
        except (KeyError, ValueError):
            pass
        if isinstance(records, TextCells):
            numbered = zip(records.rows, records.lines, map(records.record, range(len(records))), strict=True)
        else:
            numbered = ((row, None, record) for row, record in enumerate(records, 1))
        return self.feeds([self.values(record, row, line) for row, line, record in numbered])

    def value_columns(self, rows: Sequence[Sequence]) -> list[np.ndarray]:
        """One array per input, in ``inputs`` order, from rows of converted values (``values``)."""
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in self.specs]
        dtypes = [dtype for _, _, _, dtype in self.specs]
        return [np.array(column, dtype=dtype) for dtype, column in zip(dtypes, columns, strict=True)]

    def pack(self, columns: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The graph's feeds from ``columns`` (``layout.pack``: the one place that knows v1 from v2)."""
        return self.layout.pack(columns)

    def feeds(self, rows: Sequence[Sequence]) -> dict[str, np.ndarray]:
        """The graph's feeds from rows of converted values (``values``)."""
        return self.pack(self.value_columns(rows))

    def _record_feeds(self, records: list[dict]) -> dict[str, np.ndarray]:
        """Feeds from dicts: the numeric cells of all records gathered into one list in the layout's
        order (C loops: itemgetter and chain) and read at once, so that the float32 block is v2's
        numeric tensor as it is; the categorical cells as text."""
        names = [self.specs[p][0] for p in self._number_inputs]
        flat = list(itertools.chain.from_iterable(map(_getter(names), records)))
        block = self.numbers.column(flat).reshape(len(records), len(names)).astype(np.float32)
        strings = np.empty((len(records), len(self._text_inputs)), dtype=object)
        for k, position in enumerate(self._text_inputs):
            column = [record[self.specs[position][0]] for record in records]
            if not all(type(value) is str for value in column):
                column = [to_category(value) for value in column]
            strings[:, k] = column
        return self.layout.from_blocks({"float32": block, "string": strings})

    def _text_feeds(self, cells: TextCells) -> dict[str, np.ndarray]:
        """Feeds from a CSV chunk: the numeric columns read into one float32 block in the layout's
        order (``columns.read_numbers``), which is v2's numeric tensor itself; the cells it leaves
        undecided read one by one by the rule; the categorical columns as text."""
        where = {name: j for j, name in enumerate(cells.fields)}
        found = [where[name] for name, _, _, _ in self.specs]
        picked = [found[p] for p in self._number_inputs]
        if self.numbers.vector and picked:
            block, undecided = columns.read_numbers(cells, picked, self.numbers.missing)
        else:
            block = np.empty((len(cells), len(picked)), np.float32)
            undecided = np.arange(block.size)
        width = max(len(picked), 1)
        for flat in undecided.tolist():
            row, k = divmod(flat, width)
            block[row, k] = self.numbers.to_number(cells.text(row, picked[k]))
        strings = np.empty((len(cells), len(self._text_inputs)), dtype=object)
        for k, position in enumerate(self._text_inputs):
            strings[:, k] = cells.texts(found[position])
        return self.layout.from_blocks({"float32": block, "string": strings})

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


def _getter(names: list[str]) -> Callable[[Mapping], tuple]:
    """record -> its values of ``names`` as a tuple (itemgetter gives a bare value for one name)."""
    if len(names) == 1:
        return lambda record: (record[names[0]],)
    return operator.itemgetter(*names) if names else lambda record: ()


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

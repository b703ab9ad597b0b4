"""Many cells at once: a batch of text cells in one byte buffer, and the contract's number syntax
parsed over all of them with numpy instead of one Python call per cell.

A wide table's cost is its cells: 1,024 rows of 2,000 columns are two million of them, and one
Python operation per cell (~50-300 ns here) is already slower than the model. So CSV text stays in
one buffer (``TextCells``) and numbers are read from it by whole-array operations (``parse_numbers``).

``parse_numbers`` decides only the cells it can decide exactly as the contract's rule does
(``encode.number_converter``, the one definition): plain decimals of at most 8 characters after an
optional sign, and the missing tokens "" and "-". Every other cell (exponents, spaces, other missing
tokens, longer numbers, anything refused) is left undecided for the caller to read with the
per-cell rule, which also writes every error message. Numpy only, like the rest of ``contract``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

U64 = np.uint64
PAD = b"\0" * 8  # the buffer's tail, so an 8-byte read at any cell start stays inside it


def _every_byte(byte: int) -> np.uint64:
    return U64(int.from_bytes(bytes([byte]) * 8, "little"))


HIGH, LOW7, ZEROS, DOTS = _every_byte(0x80), _every_byte(0x7F), _every_byte(0x30), _every_byte(0x2E)
LOW_NIBBLES, HIGH_NIBBLES, SIX, BIT4 = _every_byte(0x0F), _every_byte(0xF0), _every_byte(6), _every_byte(0x10)
# BYTES[i]: the low i bytes of a word set; TENS[i] = 10**i, exact in float64.
BYTES = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
TENS = 10.0 ** np.arange(9)
SHIFTS = np.array([1 << (8 * i) for i in range(8)], dtype=np.uint64)  # x * SHIFTS[i] == x << 8i


@dataclass(frozen=True)
class TextCells:
    """``n`` records of ``k`` text fields, as a CSV chunk gives them: cell (i, j) is the UTF-8 text
    ``data[starts[i, j] : starts[i, j] + lengths[i, j]]``; ``data`` ends with 8 zero bytes (PAD).
    ``fields`` names the k columns; ``rows``/``lines`` number the records as errors do."""

    data: np.ndarray  # uint8
    starts: np.ndarray  # [n, k] int64
    lengths: np.ndarray  # [n, k] int64
    fields: Sequence[str]
    rows: Sequence[int]
    lines: Sequence[int]

    def __len__(self) -> int:
        return len(self.starts)

    def texts(self, column: int) -> list[str]:
        """One column's cells as Python strings."""
        raw = self.data
        return [
            raw[s : s + n].tobytes().decode("utf-8")
            for s, n in zip(self.starts[:, column].tolist(), self.lengths[:, column].tolist(), strict=True)
        ]

    def text(self, row: int, column: int) -> str:
        start = int(self.starts[row, column])
        return self.data[start : start + int(self.lengths[row, column])].tobytes().decode("utf-8")

    def record(self, row: int) -> dict[str, str]:
        """Record ``row`` (0-based) as the dict of strings csv.reader + zip would give."""
        return {name: self.text(row, j) for j, name in enumerate(self.fields)}


def csv_cells(
    lines: list[bytes], fields: Sequence[str], first: tuple[int, int], field_limit: int
) -> TextCells | None:
    """Raw CSV lines (each ending in a newline but perhaps the last) as TextCells, or None when a
    line needs csv.reader's judgement: a quote, a NUL byte, a lone CR, a blank line, a field over
    ``field_limit``, or a row with other than one field per name in ``fields`` (the header).
    ``first`` is (row, line) of lines[0].

    Without quotes a CSV row is its text split at commas, so this is exactly csv.reader's reading
    of such lines (the fallback reads every other chunk with csv.reader itself).
    """
    blob = b"".join(lines)
    if not blob.endswith(b"\n"):
        blob += b"\n"
    if b'"' in blob or b"\0" in blob or b"\n\n" in blob or blob.startswith(b"\n"):
        return None
    if b"\r" in blob:
        if blob.count(b"\r") != blob.count(b"\r\n"):
            return None
        blob = blob.replace(b"\r\n", b"\n")
        if b"\n\n" in blob or blob.startswith(b"\n"):
            return None
    data = np.frombuffer(blob + PAD, dtype=np.uint8)
    ends = np.flatnonzero((data == 44) | (data == 10))
    n, width = len(lines), len(fields)
    if ends.size != n * width:
        return None
    ends = ends.reshape(n, width)
    if not (data[ends[:, -1]] == 10).all():
        return None  # counts match but some row holds another's fields: a ragged pair
    if max(map(len, lines)) > field_limit:
        return None  # a field may be over csv's limit: let csv.reader say so
    flat = np.empty(ends.size, dtype=np.int64)
    flat[0] = 0
    np.add(ends.ravel()[:-1], 1, out=flat[1:])
    starts = flat.reshape(n, width)
    lengths = ends - starts
    row, line = first
    return TextCells(data, starts, lengths, fields, range(row, row + n), range(line, line + n))


def parse_numbers(
    data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, missing: frozenset[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, decided) for the cells at ``starts``/``lengths`` (1-D) of ``data`` (PAD at
    its end). A decided cell's value is exactly what the contract's rule gives (NaN if missing);
    an undecided cell's value is meaningless: the per-cell rule reads it or refuses it.

    Few passes over the whole batch (the single-character cells, the bulk of 0/1 indicator
    columns); the longer cells are gathered and read by ``decimals``.
    """
    first = data[starts]
    digit = first - np.uint8(48)
    single = lengths == 1
    decided = single & (digit < 10)
    values = digit.astype(np.float64)
    gaps = [lengths == 0] if "" in missing else []
    if "-" in missing:
        gaps.append(single & (first == 45))
    for gap in gaps:
        values[gap] = np.nan
        decided |= gap
    longer = np.flatnonzero((lengths >= 2) & (lengths <= 9))
    if longer.size:
        lead = first[longer]
        signed = (lead == 45) | (lead == 43)
        body = lengths[longer] - signed  # characters after the sign
        view = np.ndarray((data.size - 7,), dtype="<u8", buffer=data, strides=(1,))
        found, ok = decimals(view[starts[longer] + signed], np.minimum(body, 8))
        ok &= body <= 8
        found = np.where(lead == 45, -found, found)  # "-0" is -0.0, as float() reads it
        values[longer[ok]] = found[ok]
        decided[longer[ok]] = True
    return values, decided


def decimals(words: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, ok) for unsigned number texts of 1 to 8 characters, all at once (SIMD within a
    register: eight characters per 64-bit word, the first in the low byte).

    ``ok`` marks the texts of the form digits[.digits], digits. or .digits: at most 8 digits, so
    the mantissa m is exact, and m / 10**f is one correctly rounded division, which is the value
    float(text) gives. Other texts (exponents, spaces, letters, two dots...) are not ok.
    """
    text = words & BYTES[lengths]
    dots = _zero_bytes(text ^ DOTS)
    nibble_over_9 = (((text & LOW_NIBBLES) + SIX) & BIT4) << U64(3)
    digits = _zero_bytes((text & HIGH_NIBBLES) ^ ZEROS) & ~nibble_over_9
    has_dot = dots != U64(0)
    ok = ((digits | dots) == (HIGH & BYTES[lengths])) & ((dots & (dots - U64(1))) == U64(0))
    ok &= lengths > has_dot  # at least one digit
    below = (dots >> U64(7)) - U64(1)  # the bytes before the dot (all of them without one)
    text = (text & below) | ((text >> U64(8)) & ~below)  # the dot taken out
    count = np.maximum(lengths - has_dot, 1)  # digits
    dot_at = (np.bitwise_count(below) >> 3).astype(np.int64)
    fraction = np.where(has_dot, lengths - 1 - dot_at, 0)
    # Right-align the digits in 8 bytes, '0's in front, then the classic 8-digit SWAR sum.
    pad = 8 - count
    text = text * SHIFTS[pad] | (ZEROS & BYTES[pad])  # (a product: numpy's shifts by an array are slow)
    v = text - ZEROS
    v = v * U64(10) + (v >> U64(8))
    v = (
        (v & U64(0x000000FF000000FF)) * U64(100 + (1000000 << 32))
        + ((v >> U64(16)) & U64(0x000000FF000000FF)) * U64(1 + (10000 << 32))
    ) >> U64(32)
    return v.astype(np.float64) / TENS[fraction], ok


def _zero_bytes(x: np.ndarray) -> np.ndarray:
    """The high bit of each byte of ``x`` that is zero, exactly (no false positives)."""
    return ~(((x & LOW7) + LOW7) | x) & HIGH


def string_cells(column: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(data, starts, lengths) for a column of ASCII strings, or None if one is not ASCII or holds a
    NUL (the caller then reads the column cell by cell). The cells are joined with NULs, which numpy
    finds again: no Python call per cell."""
    joined = "\0".join(column)
    if not joined.isascii():
        return None
    data = np.frombuffer(joined.encode("ascii") + PAD, dtype=np.uint8)
    ends = np.flatnonzero(data[: len(joined)] == 0)
    if ends.size != len(column) - 1:
        return None
    starts = np.empty(len(column), dtype=np.int64)
    starts[:1] = 0
    np.add(ends, 1, out=starts[1:])
    lengths = np.empty(len(column), dtype=np.int64)
    np.subtract(ends, starts[:-1], out=lengths[:-1])
    lengths[-1:] = len(joined) - starts[-1:]
    return data, starts, lengths

"""Many cells at once: a batch of text cells in one byte buffer, and the contract's number syntax
parsed over all of them with numpy instead of one Python call per cell.

A wide table's cost is its cells: 1,024 rows of 2,000 columns are two million of them, and one
Python operation per cell (~50-300 ns here) is already slower than the model. So CSV text stays in
one buffer (``TextCells``) and numbers are read from it by array operations, a cache-sized block of
rows at a time (``read_numbers`` for a CSV chunk, ``parse_numbers`` for a list of strings).

The reader decides only the cells it can decide exactly as the contract's rule does
(``encode.number_converter``, the one definition): plain decimals of at most 16 characters after an
optional sign whose mantissa is at most 2**53, and the missing tokens "" and "-". Every other cell
(exponents, spaces, other missing tokens, longer numbers, anything refused) is left undecided for
the caller to read with the per-cell rule, which also writes every error message. Numpy only, like
the rest of ``contract``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

U64 = np.uint64
PAD = b"\0" * 8  # the buffer's tail, so an 8-byte read at any cell start stays inside it


def _every_byte(byte: int) -> np.uint64:
    return U64(int.from_bytes(bytes([byte]) * 8, "little"))


HIGH, LOW7, ZEROS = _every_byte(0x80), _every_byte(0x7F), _every_byte(0x30)
# BYTES[i]: the low i bytes of a word set.
BYTES = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
SHIFTS = np.array([1 << (8 * i) for i in range(8)], dtype=np.uint64)  # x * SHIFTS[i] == x << 8i
FILL = ZEROS & BYTES[:8]  # FILL[i]: i '0' characters in the low bytes
ABOVE_9, DOT_XOR = _every_byte(0x80 - 10), _every_byte(0x2E ^ 0x30)
# By the dot's byte k in a right-aligned text (8: no dot), f = 7 - k digits follow it: 10**(f+1),
# 9 * 10**f and 10**f (a split past any 8-digit number without a dot).
DOT_SPLIT = np.array([10.0 ** (8 - k) for k in range(8)] + [1e18])
DOT_NINES = np.array([9 * 10.0 ** (7 - k) for k in range(8)] + [0.0])
DOT_TENS = np.array([10.0 ** (7 - k) for k in range(8)] + [1.0])
# For 9-16 characters, by f + 1 (0: no dot): 10**(f+1) (past any 16 digits without a dot), 9 * 10**f
# and 10**f; and f + 1 by the dot's byte in the last 8 characters' word and in the first's.
LONG_SPLIT = np.array([1 << 63] + [10 ** (f + 1) for f in range(16)], dtype=np.uint64)
LONG_NINES = np.array([0] + [9 * 10**f for f in range(16)], dtype=np.uint64)
LONG_TENS = np.array([1.0] + [10.0**f for f in range(16)])
LOW_AFTER = np.array([8 - k for k in range(8)] + [0], dtype=np.int64)
HIGH_AFTER = np.array([16 - k for k in range(8)] + [0], dtype=np.int64)
SIGNED = np.zeros(256, dtype=np.int64)  # by a cell's first byte: 1 for a sign
SIGNED[[ord("-"), ord("+")]] = 1
SIGNS = np.where(np.arange(256) == ord("-"), -1.0, 1.0)


@dataclass(frozen=True)
class TextCells:
    """``n`` records of ``k`` text fields, as a CSV chunk gives them: the UTF-8 text of the chunk in
    ``raw`` (and ``data``, the same bytes as an array, ending with 8 zero bytes: PAD), and ``ends``,
    the position of the separator after each cell (a comma, or the line's LF). A cell starts after
    the separator before it, so cell (i, j) is ``raw[ends.flat[i * k + j - 1] + 1 : ends[i, j]]``.
    ``fields`` names the k columns; ``rows``/``lines`` number the records as errors do."""

    raw: bytes
    ends: np.ndarray  # [n, k] int64
    fields: Sequence[str]
    rows: Sequence[int]
    lines: Sequence[int]

    def __len__(self) -> int:
        return len(self.ends)

    @property
    def data(self) -> np.ndarray:
        return np.frombuffer(self.raw, dtype=np.uint8)

    def spans(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """(starts, lengths) of the cells of rows ``first`` to ``last`` - 1, flat in row order."""
        ends = self.ends[first:last].ravel()
        starts = np.empty_like(ends)
        starts[:1] = self.ends[first - 1, -1] + 1 if first else 0
        np.add(ends[:-1], 1, out=starts[1:])
        return starts, ends - starts

    def texts(self, column: int) -> list[str]:
        """One column's cells as Python strings."""
        ends = self.ends[:, column]
        before = self.ends[:, column - 1] if column else np.concatenate([[-1], self.ends[:-1, -1]])
        raw = self.raw
        starts = before + 1
        return [raw[s:e].decode("utf-8") for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]

    def text(self, row: int, column: int) -> str:
        at = row * self.ends.shape[1] + column
        start = int(self.ends.flat[at - 1]) + 1 if at else 0
        return self.raw[start : int(self.ends.flat[at])].decode("utf-8")

    def record(self, row: int) -> dict[str, str]:
        """Record ``row`` (0-based) as the dict of strings csv.reader + zip would give."""
        return {name: self.text(row, j) for j, name in enumerate(self.fields)}


def csv_cells(
    blob: bytes, count: int, fields: Sequence[str], first: tuple[int, int], field_limit: int
) -> TextCells | None:
    """``count`` raw CSV lines (each ending in a newline but perhaps the last) in one bytes object,
    as TextCells; or None when a line needs csv.reader's judgement: a quote, a NUL byte, text that
    is not UTF-8, a lone CR, a blank line, a line longer than ``field_limit`` (a field may be over
    csv's limit), or a row with other than one field per name in ``fields`` (the header).
    ``first`` is (row, line) of the first line.

    Without quotes a CSV row is its text split at commas, so this is exactly csv.reader's reading
    of such lines (the fallback reads every other chunk with csv.reader itself).
    """
    if not blob.endswith(b"\n"):
        blob += b"\n"
    if b'"' in blob or b"\0" in blob or not _utf8(blob):
        return None
    if b"\r" in blob:
        if blob.count(b"\r") != blob.count(b"\r\n"):
            return None
        blob = blob.replace(b"\r\n", b"\n")
    # A blank line: with two fields or more, the row check below refuses it; with one, it would
    # pass as an empty field, where csv.reader skips it.
    if len(fields) == 1 and (b"\n\n" in blob or blob.startswith(b"\n")):
        return None
    raw = blob + PAD
    data = np.frombuffer(raw, dtype=np.uint8)
    ends = np.flatnonzero((data == 44) | (data == 10))  # one pass each: faster whole than in blocks
    n, width = count, len(fields)
    if ends.size != n * width:
        return None
    ends = ends.reshape(n, width)
    line_ends = ends[:, -1]
    if not (data[line_ends] == 10).all():
        return None  # counts match but some row holds another's fields: a ragged pair
    if len(blob) > field_limit and (np.diff(line_ends, prepend=-1) > field_limit).any():
        return None
    row, line = first
    return TextCells(raw, ends, fields, range(row, row + n), range(line, line + n))


# Cells per pass of the number reader: the arrays of one block (a few hundred kB) stay in the CPU's
# L2 cache, where a whole batch's (2M cells: tens of MB) would stream through memory at every one of
# the reader's ~60 passes. Measured on 1,024 rows x 2,000 columns: 3-4x faster than whole-batch passes.
BLOCK = 1 << 16


@functools.lru_cache(maxsize=8)
def short_cells(missing: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
    """(values, decided) of every cell of at most one character, by key = min(length, 2) * 256 +
    first byte: "" and "-" are NaN if missing tokens, a digit is its value, anything else (and every
    longer cell, keys from 512) is undecided. One table lookup instead of a pass per kind of cell."""
    values, decided = np.full(768, np.nan), np.zeros(768, dtype=bool)
    decided[:256] = "" in missing  # length 0, whatever byte follows
    values[256 + 48 : 256 + 58], decided[256 + 48 : 256 + 58] = np.arange(10), True
    decided[256 + 45] = "-" in missing
    return values, decided


def _utf8(blob: bytes) -> bool:
    if blob.isascii():
        return True
    try:
        blob.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def reads_as_number(tokens: Iterable[str]) -> bool:
    """Whether the vectorised reader would read one of ``tokens`` (missing tokens of a contract) as a
    number: then it must not be used, as the rule reads the token as missing. "" and "-" are read
    as missing when listed; the default tokens are words."""
    listed = [token for token in tokens if token not in ("", "-")]
    cells = string_cells(listed) if listed else None
    return cells is not None and bool(parse_numbers(*cells, frozenset())[1].any())


def parse_numbers(
    data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, missing: frozenset[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, decided) for the cells at ``starts``/``lengths`` (1-D) of ``data`` (PAD at
    its end). A decided cell's value is exactly what the contract's rule gives (NaN if missing);
    an undecided cell's value is meaningless: the per-cell rule reads it or refuses it.
    """
    values, decided = np.empty(len(starts)), np.empty(len(starts), dtype=bool)
    for lo in range(0, len(starts), BLOCK):
        block = slice(lo, lo + BLOCK)
        values[block], decided[block] = numbers_block(data, starts[block], lengths[block], missing)
    return values, decided


def read_numbers(
    cells: TextCells, columns: Sequence[int], missing: frozenset[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The CSV columns ``columns`` of ``cells`` as one float32 [n, len(columns)] block (each value the
    float64 the rule gives, rounded to the nearest float32 once), and the flat indices into it of the
    undecided cells, for the caller to read with the per-cell rule.

    Blocks of whole rows (about BLOCK cells), each read and written in the cache. Every cell of a
    row is read, the few of other columns too: cheaper than picking the wanted cells out first.
    (Reading the blocks on two threads was slower, measured: a block is ~70 short numpy calls,
    each holding the GIL for its Python part.)
    """
    n, width = cells.ends.shape
    picked = np.asarray(columns, dtype=np.int64)
    lo = int(picked[0]) if len(picked) else 0
    contiguous = bool((picked == np.arange(lo, lo + len(picked))).all())
    wanted = np.s_[:, lo : lo + len(picked)] if contiguous else np.s_[:, picked]
    slot = np.full(width, -1, dtype=np.int64)
    slot[picked] = np.arange(len(picked))
    out = np.empty((n, len(picked)), dtype=np.float32)
    undecided = [np.empty(0, dtype=np.int64)]
    step, data = max(1, BLOCK // width), cells.data
    for first in range(0, n, step):
        starts, lengths = cells.spans(first, first + step)
        values, decided = numbers_block(data, starts, lengths, missing)
        values, decided = values.reshape(-1, width), decided.reshape(-1, width)
        out[first : first + step] = values[wanted]
        if np.count_nonzero(decided[wanted]) == len(values) * len(picked):
            continue  # the usual case: every wanted cell decided
        row, at = np.divmod(np.flatnonzero(~decided), width)
        keep = slot[at] >= 0
        undecided.append((row[keep] + first) * len(picked) + slot[at[keep]])
    return out, np.concatenate(undecided)


def numbers_block(
    data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, missing: frozenset[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``parse_numbers`` of one block: the short cells by table (``short_cells``), the others of an
    optional sign and up to 8 characters by ``decimals``, up to 16 by ``long_decimals`` (an
    undecided cell's value is garbage)."""
    table, known = short_cells(missing)
    key = np.minimum(lengths, 2)
    key <<= 8
    key += data[starts]
    values, decided = table.take(key), known.take(key)
    longer = np.flatnonzero(key >= 512)
    if longer.size:
        at = starts[longer]
        lead = data[at]
        signed = SIGNED.take(lead)
        body = lengths[longer] - signed  # characters after the sign
        view = np.ndarray((data.size - 7,), dtype="<u8", buffer=data, strides=(1,))
        at += signed
        found, ok = decimals(view[at], np.minimum(body, 8))
        ok &= body <= 8
        longest = np.flatnonzero((body > 8) & (body <= 16)) if body.max() > 8 else ()
        if len(longest):
            where, size = at[longest], body[longest]
            found[longest], ok[longest] = long_decimals(view[where], view[where + size - 8], size)
        found *= SIGNS.take(lead)  # "-0" is -0.0, as float() reads it
        values[longer], decided[longer] = found, ok
    return values, decided


def decimals(words: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, ok) for unsigned number texts of 1 to 8 characters, all at once (SIMD within a
    register: eight characters per 64-bit word, the first in the low byte).

    ``ok`` marks the texts of the form digits[.digits], digits. or .digits: at most 8 digits, so
    the mantissa m is exact, and m / 10**f is one correctly rounded division, which is the value
    float(text) gives. Other texts (exponents, spaces, letters, two dots...) are not ok.

    The text is read as 8 digits with the dot as a 0 (``_eight``): x = q * 10**(f+1) + r, r < 10**f,
    so m = q * 10**f + r = x - 9 * q * 10**f, where q = floor(x / 10**(f+1)) exactly (the
    quotient's fraction is below 0.1). About 40 array operations, none per character.
    """
    x, dots, ok = _eight(words, lengths)
    ok &= (lengths > 1) | (dots == U64(0))  # "." alone is not a number
    dot_at = np.bitwise_count(dots - U64(1)) >> np.uint8(3)  # the dot's byte, 8 without a dot
    x = x.astype(np.float64)
    below = np.floor(x / DOT_SPLIT[dot_at])
    return (x - below * DOT_NINES[dot_at]) / DOT_TENS[dot_at], ok


def long_decimals(head: np.ndarray, tail: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``decimals`` for texts of 9 to 16 characters (printf-style floats such as %.10f, the shorter
    reprs; a full 17-digit repr is longer and left to the per-cell rule): ``tail`` is the
    word of their last 8 characters, ``head`` the word where they start (its first ``lengths`` - 8
    characters are the rest). m, at most 15-16 digits, is computed in exact integers; a text is ok
    only if m <= 2**53, where m and 10**f (f <= 15) are exact doubles and m / 10**f is again one
    correctly rounded division (Clinger's fast path), the value float(text) gives."""
    high, high_dots, ok = _eight(head, lengths - 8)
    low, low_dots, low_ok = _eight(tail, np.full(len(tail), 8))
    ok &= low_ok & ((high_dots == U64(0)) | (low_dots == U64(0)))  # one dot at most in all
    x = high * U64(10**8) + low
    # f + 1 by the dot's byte in each word (8: no dot there); 0 for no dot at all.
    after = np.maximum(
        LOW_AFTER[np.bitwise_count(low_dots - U64(1)) >> np.uint8(3)],
        HIGH_AFTER[np.bitwise_count(high_dots - U64(1)) >> np.uint8(3)],
    )
    m = x - x // LONG_SPLIT[after] * LONG_NINES[after]
    ok &= m <= U64(1 << 53)
    return m.astype(np.float64) / LONG_TENS[after], ok


def _eight(words: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Texts of 1 to 8 characters right-aligned behind '0's and read as 8 digits, a dot as the digit
    0: (that integer, the high bit of the dot's byte or 0, ok: nothing but digits and one dot at most)."""
    pad = 8 - lengths
    digits = (words * SHIFTS[pad] | FILL[pad]) ^ ZEROS  # right-aligned; a digit is now its value
    other = (((digits & LOW7) + ABOVE_9) | digits) & HIGH  # the high bit of each byte not a digit
    dots = _zero_bytes(digits ^ DOT_XOR)
    ok = (other == dots) & ((dots & (dots - U64(1))) == U64(0))
    digits ^= (dots >> U64(7)) * U64(0x1E)  # the dot read as the digit 0
    v = digits * U64(10) + (digits >> U64(8))
    v = (
        (v & U64(0x000000FF000000FF)) * U64(100 + (1000000 << 32))
        + ((v >> U64(16)) & U64(0x000000FF000000FF)) * U64(1 + (10000 << 32))
    ) >> U64(32)
    return v, dots, ok


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

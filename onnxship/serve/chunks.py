"""Input files read a chunk of rows at a time, for the scorer to encode column by column.

A CSV chunk whose lines have no quote, NUL byte, lone CR or blank line is cut at commas by numpy
and handed over whole as ``TextCells`` (``onnxship.contract.columns.csv_cells``): no Python string
per cell. Any other chunk is read by csv.reader, line by line, exactly as before, and comes back as
``Item``s: (row, line, record), where a record is a dict of strings, an InvalidRecord for a bad row,
or a UserError that ends the file (not CSV, not UTF-8) met after the rows before it.
"""

from __future__ import annotations

import collections
import csv
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from onnxship.contract.columns import TextCells, csv_cells
from onnxship.contract.encode import InvalidRecord
from onnxship.core.errors import UserError
from onnxship.serve.passthrough import Passthrough
from onnxship.serve.summary import require_columns

Item = tuple[int, int, Any]
# Below this many cells a chunk is read by csv.reader: numpy's fixed cost per call would outweigh
# the per-cell work saved (one row of 20 columns at batch 1).
MIN_CELLS = 1024


class Counter:
    """Bytes read so far, for the progress bar."""

    def __init__(self) -> None:
        self.bytes = 0


def decode(raw: bytes, number: int, path: Path) -> str:
    """A file's line ``number`` as text (a BOM on line 1 dropped)."""
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} line {number} is not UTF-8 text: save the file as UTF-8") from None


def check_header(
    path: Path, header: list[str] | None, required: Sequence[str], kept: Passthrough | None
) -> None:
    """Refuse a CSV header that is empty, repeats a name or lacks a column to read or copy."""
    if not header:
        raise UserError(f"{path} is empty: it needs a header row naming the columns")
    duplicates = sorted(name for name, count in collections.Counter(header).items() if count > 1)
    if duplicates:
        raise UserError(f"{path} has duplicate column names {duplicates}: rename them")
    require_columns(path, header, required)
    if kept is not None:
        kept.check_header(path, header)


class CsvChunks:
    """A CSV file after its header, read ``chunk(limit)`` rows at a time (at most ``limit``)."""

    def __init__(
        self, handle: IO[bytes], path: Path, counter: Counter, required: Sequence[str], kept: Passthrough
    ) -> None:
        self.handle, self.path, self.counter = handle, path, counter
        self.line = self.row = 0  # the last line read, the last row numbered
        self.field_limit = csv.field_size_limit()
        reader = csv.reader(self._decoded([]), strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise UserError(f"{path} line {self.line} is not valid CSV ({exc})") from None
        check_header(path, header, required, kept)
        self.header: list[str] = header  # type: ignore[assignment] (checked above)

    def _raw(self) -> Iterator[bytes]:
        for raw in self.handle:
            self.counter.bytes += len(raw)
            self.line += 1
            yield raw

    def _decoded(self, lines: list[bytes]) -> Iterator[str]:
        """``lines`` (already read, numbered up to self.line) then the file's next lines, as text."""
        first = self.line - len(lines) + 1
        for number, raw in enumerate(lines, first):
            yield decode(raw, number, self.path)
        for raw in self._raw():
            yield decode(raw, self.line, self.path)

    def chunk(self, limit: int) -> TextCells | list[Item] | None:
        """The next rows (from at most ``limit`` lines): TextCells for a plain chunk, else items
        (none if every line was blank); None at the end of the file."""
        lines = list(itertools.islice(self._raw(), limit))
        if not lines:
            return None
        first = (self.row + 1, self.line - len(lines) + 1)
        cells = None
        if len(lines) * len(self.header) >= MIN_CELLS and _utf8(lines):
            cells = csv_cells(lines, self.header, first, self.field_limit)
        if cells is None:
            return self._read(lines)
        self.row += len(cells)
        return cells

    def _read(self, lines: list[bytes]) -> list[Item]:
        """csv.reader over ``lines``, and past them while a quoted field spans more lines."""
        base, items, width = self.line - len(lines), [], len(self.header)
        reader = csv.reader(self._decoded(lines), strict=True)
        try:
            for cells in reader:
                if cells:  # a blank line is not a row (as at training time)
                    self.row += 1
                    line = base + reader.line_num
                    if len(cells) != width:
                        reason = f"has {len(cells)} fields but the header has {width}"
                        items.append((self.row, line, InvalidRecord(self.row, None, reason, line)))
                    else:
                        items.append((self.row, line, dict(zip(self.header, cells, strict=True))))
                if reader.line_num >= len(lines):
                    break
        except csv.Error as exc:
            error = UserError(f"{self.path} line {base + reader.line_num} is not valid CSV ({exc})")
            items.append((self.row, base + reader.line_num, error))
        except UserError as exc:  # a line that is not UTF-8, after the rows before it
            items.append((self.row, self.line, exc))
        return items


def _utf8(lines: list[bytes]) -> bool:
    blob = b"".join(lines)
    if blob.isascii():
        return True
    try:
        blob.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class JsonChunks:
    """A JSON-lines reader's items, ``chunk(limit)`` at a time."""

    def __init__(self, items: Iterator[Item]) -> None:
        self.items = items

    def chunk(self, limit: int) -> list[Item] | None:
        return list(itertools.islice(self.items, limit)) or None

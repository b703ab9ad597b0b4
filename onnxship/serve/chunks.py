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

from onnxship.contract import csvfile
from onnxship.contract.columns import TextCells, csv_cells
from onnxship.contract.csvfile import FIELD_LIMIT, ByteCounter, decode_line, invalid_csv
from onnxship.contract.encode import InvalidRecord
from onnxship.core.errors import UserError
from onnxship.serve.passthrough import Passthrough
from onnxship.serve.summary import require_columns

Item = tuple[int, int, Any]
# Below this many cells a chunk is read by csv.reader: numpy's fixed cost per call would outweigh
# the per-cell work saved (one row of 20 columns at batch 1).
MIN_CELLS = 1024


def check_header(
    path: Path, header: list[str] | None, required: Sequence[str], kept: Passthrough | None
) -> None:
    """Refuse a CSV header that is empty, repeats a name or lacks a column to read or copy."""
    csvfile.check_header(path, header)
    require_columns(path, header, required)
    if kept is not None:
        kept.check_header(path, header)


class CsvChunks:
    """A CSV file after its header, read ``chunk(limit)`` rows at a time (at most ``limit``).

    One csv.reader reads the whole file, as before, except the chunks numpy cuts: a plain chunk's
    lines are read raw and never reach it; any other chunk's lines are handed back to it
    (``pending``). ``line`` counts every line read, so it is the line where the last record ended.
    """

    def __init__(
        self, handle: IO[bytes], path: Path, counter: ByteCounter, required: Sequence[str], kept: Passthrough
    ) -> None:
        self.handle, self.path, self.counter = handle, path, counter
        self.line = self.row = 0  # the last line read, the last row numbered
        self.pending: collections.deque[bytes] = collections.deque()  # lines read, not yet parsed
        self.lines = self._raw()  # one iterator: a raw line may hold several lines (lone CRs)
        csv.field_size_limit(FIELD_LIMIT)  # the rules of onnxship.contract.csvfile, as at training
        self.field_limit = FIELD_LIMIT
        self.reader = csv.reader(self._decoded(), strict=True)
        try:
            header = next(self.reader, None)
        except csv.Error as exc:
            raise invalid_csv(path, self.line, exc) from None
        check_header(path, header, required, kept)
        self.header: list[str] = header  # type: ignore[assignment] (checked above)

    def _raw(self) -> Iterator[bytes]:
        """The file's lines with their ends; a line ends at LF, CRLF or a lone CR (csvfile.text_lines)."""
        for raw in self.handle:
            self.counter.bytes += len(raw)
            for piece in raw.splitlines(keepends=True) if b"\r" in raw else (raw,):
                self.line += 1
                yield piece

    def _decoded(self) -> Iterator[str]:
        """The pending lines, then the file's next lines, as text (for csv.reader)."""
        raw_lines = self.lines
        while True:
            if self.pending:
                raw = self.pending.popleft()
            else:
                raw = next(raw_lines, None)
                if raw is None:
                    return
            yield decode_line(raw, self.line - len(self.pending), self.path, refuse_nul=False)

    def chunk(self, limit: int) -> TextCells | list[Item] | None:
        """The next rows (at most ``limit``): TextCells for a plain chunk of enough cells, else
        items (none if every line was blank); None at the end of the file."""
        if limit * len(self.header) < MIN_CELLS:
            return self._read(limit) or None  # no row: the end (blank lines do not stop a read)
        lines = list(itertools.islice(self.lines, limit))
        if not lines:
            return None
        first = (self.row + 1, self.line - len(lines) + 1)
        cells = csv_cells(lines, self.header, first, self.field_limit) if _utf8(lines) else None
        if cells is None:
            self.pending.extend(lines)
            return self._read(limit)
        self.row += len(cells)
        return cells

    def _read(self, limit: int) -> list[Item]:
        """Up to ``limit`` rows from csv.reader; with lines pending, exactly until they are read
        (and past them while a quoted field spans more lines)."""
        items: list[Item] = []
        width, until_pending = len(self.header), bool(self.pending)
        try:
            for cells in self.reader:
                line = self.line - len(self.pending)
                if cells:  # a blank line is not a row (as at training time)
                    self.row += 1
                    if len(cells) != width:
                        reason = f"has {len(cells)} fields but the header has {width}"
                        items.append((self.row, line, InvalidRecord(self.row, None, reason, line)))
                    else:
                        items.append((self.row, line, dict(zip(self.header, cells, strict=True))))
                if (not self.pending) if until_pending else len(items) >= limit:
                    break
        except csv.Error as exc:
            line = self.line - len(self.pending)
            items.append((self.row, line, invalid_csv(self.path, line, exc)))
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

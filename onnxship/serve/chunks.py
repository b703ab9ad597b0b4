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
from onnxship.contract.csvfile import FIELD_LIMIT, ByteCounter, decode_line, invalid_csv, split_lines
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


class LineBuffer:
    """A binary file's bytes, taken one line or many lines at a time (a line ends at LF; the file's
    last line may lack one). Many lines come back as one bytes object, with no object per line:
    reading a wide file line by line costs ~7 us per line, most of the time a whole batch needs."""

    def __init__(self, handle: IO[bytes], counter: ByteCounter, block: int = 1 << 20) -> None:
        self.handle, self.counter, self.block = handle, counter, block
        self.data, self.at, self.eof = b"", 0, False

    def _more(self, size: int) -> bool:
        """Read at least ``size`` more bytes (one block at least); False at the end of the file."""
        new = b"" if self.eof else self.handle.read(max(size, self.block))
        if not new:
            self.eof = True
            return False
        self.data, self.at = self.data[self.at :] + new, 0
        return True

    def line(self) -> bytes | None:
        """The next line with its LF; None at the end. A long line (a file of lone CRs is one) is
        read in reads as large as what is held, and searched once: time in proportion to its length."""
        searched = self.at
        while (end := self.data.find(b"\n", searched)) < 0:
            searched = len(self.data) - self.at  # where the unsearched bytes start after _more
            if not self._more(searched):
                end = len(self.data) - 1
                break
        return self._take(end + 1) or None

    def lines(self, count: int) -> tuple[bytes, int]:
        """The next ``count`` lines (fewer at the end of the file) as one bytes object, and how many."""
        end, found = self.at, 0
        while found < count:
            newline = self.data.find(b"\n", end)
            if newline >= 0:
                end, found = newline + 1, found + 1
                continue
            done = end - self.at
            # What the lines so far say the rest needs (no line yet: a block, or as much as is held).
            size = int((count - found) * done / found * 1.1) if found else len(self.data) - self.at
            if not self._more(size):
                found += len(self.data) > end  # a last line without its LF
                end = len(self.data)
                break
            end = done  # the bytes before self.at are gone
        return self._take(end), found

    def _take(self, end: int) -> bytes:
        taken = self.data[self.at : end]
        self.at = end
        self.counter.bytes += len(taken)
        return taken


class CsvChunks:
    """A CSV file after its header, read ``chunk(limit)`` rows at a time (at most ``limit``).

    One csv.reader reads the whole file, as before, except the chunks numpy cuts: a plain chunk's
    lines are taken raw and never reach it; any other chunk's lines are handed back to it
    (``pending``). ``line`` counts every line read, so it is the line where the last record ended.
    """

    def __init__(
        self, handle: IO[bytes], path: Path, counter: ByteCounter, required: Sequence[str], kept: Passthrough
    ) -> None:
        self.path = path
        self.line = self.row = 0  # the last line read, the last row numbered
        self.pending: collections.deque[bytes] = collections.deque()  # lines read, not yet parsed
        self.buffer = LineBuffer(handle, counter)
        self.carry: collections.deque[bytes] = collections.deque()  # lines a lone CR split off, unread
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
        """The file's lines with their ends; a line ends at LF, CRLF or a lone CR (csvfile.text_lines).
        The lines after a lone CR wait in ``carry``, so a chunk knows they come first."""
        while True:
            if self.carry:
                piece = self.carry.popleft()
            else:
                raw = self.buffer.line()
                if raw is None:
                    return
                piece, *rest = split_lines(raw)
                self.carry.extend(rest)
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
        if limit * len(self.header) < MIN_CELLS or self.carry:
            return self._read(limit) or None  # no row: the end (blank lines do not stop a read)
        blob, count = self.buffer.lines(limit)
        if not blob:
            return None
        lines = split_lines(blob) if b"\r" in blob else None  # a lone CR ends a line too
        if lines is not None and len(lines) > limit:  # more lines than asked: the rest wait in carry
            self.carry.extend(lines[limit:])
            lines = lines[:limit]
            blob = b"".join(lines)
        count = len(lines) if lines is not None else count
        first = (self.row + 1, self.line + 1)
        self.line += count
        cells = csv_cells(blob, count, self.header, first, self.field_limit)
        if cells is None:
            self.pending.extend(lines if lines is not None else blob.splitlines(keepends=True))
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


class JsonChunks:
    """A JSON-lines reader's items, ``chunk(limit)`` at a time."""

    def __init__(self, items: Iterator[Item]) -> None:
        self.items = items

    def chunk(self, limit: int) -> list[Item] | None:
        return list(itertools.islice(self.items, limit)) or None

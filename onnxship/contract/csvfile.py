"""CSV files as every Python reader of this project reads them: the scorer's input, the training data.

One set of rules, so a file the scorer refuses is not trained on (the Node client reads alike):
- UTF-8 text; the file's first BOM is dropped; a line ends at LF, CRLF or a lone CR. A line that is
  not UTF-8 is refused by number. A NUL byte is refused: at training, anywhere in the file (a binary
  or corrupt file: pandas and ONNX Runtime would cut a string at it); when scoring, in the record's
  column (so --skip-invalid can skip that row), as the Node client does.
- Python's csv module in strict mode: a quoted field may span lines; a quote must close before a
  comma or the line end.
- The first row is the header: it must name the columns, each once.
- A field holds at most 131,072 characters (the csv module's default, which the Node client
  enforces too).
- A blank line is not a row. A row with another number of fields than the header is an
  InvalidRecord (row and line named), never padded with missing values.

``rows`` yields (row, line, cells or InvalidRecord); the caller decides whether an invalid row stops
it (training, ``read_csv_records``) or is skipped (``--skip-invalid``).
"""

from __future__ import annotations

import collections
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from onnxship.contract.encode import InvalidRecord
from onnxship.core.errors import UserError

FIELD_LIMIT = 131_072  # the csv module's default, which the Node client enforces too (in code points)


class ByteCounter:
    """Bytes read so far, for a progress bar."""

    def __init__(self) -> None:
        self.bytes = 0


def decode_line(raw: bytes, number: int, path: Path, refuse_nul: bool = True) -> str:
    """Line ``number`` of a file as text (a BOM on line 1 dropped); a NUL byte or bytes that are not
    UTF-8 are a UserError naming the line. Every reader of lines (csv.reader's feed here, a chunked
    reader) decodes through this, so the rules and messages stay one."""
    if refuse_nul and b"\x00" in raw:
        raise UserError(
            f"{path} line {number} has a NUL byte, so it is not a text CSV file: export your data "
            "as UTF-8 CSV"
        )
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} line {number} is not UTF-8 text: save the file as UTF-8") from None


def split_lines(raw: bytes) -> list[bytes] | tuple[bytes]:
    """``raw``'s lines with their ends: a lone CR ends one, as LF and CRLF do (``text_lines``)."""
    return raw.splitlines(keepends=True) if b"\r" in raw else (raw,)


def text_lines(handle: IO[bytes], path: Path, counter: ByteCounter, refuse_nul: bool = True) -> Iterator[str]:
    """Decoded lines of a binary file with their line ends, counting bytes as they go.

    A line ends at "\n", "\r\n" or a lone "\r" (an old spreadsheet's CSV), as Python's universal
    newlines and the Node client read them; the ends are kept, so a quoted CSV field keeps the one it
    holds. Only the file's first BOM is dropped: a BOM anywhere else is a character of the text. The
    scorer and JSON lines pass ``refuse_nul=False``: there a NUL makes one record invalid (in its
    column), as in the Node client."""
    number = 0
    for raw in handle:
        counter.bytes += len(raw)
        for piece in split_lines(raw):
            number += 1
            yield decode_line(piece, number, path, refuse_nul)


@dataclass
class CsvFile:
    """An open CSV file: its header (checked) and a reader positioned at the first data row."""

    path: Path
    header: list[str]
    reader: Any

    def rows(self) -> Iterator[tuple[int, int, list[str] | InvalidRecord]]:
        """(row, line, cells) per data row; cells is an InvalidRecord when the row is ragged."""
        reader, width, row = self.reader, len(self.header), 0
        try:
            for cells in reader:
                if not cells:
                    continue  # a blank line is not a row
                row += 1
                if len(cells) != width:
                    reason = f"has {len(cells)} fields but the header has {width}"
                    yield row, reader.line_num, InvalidRecord(row, None, reason, reader.line_num)
                else:
                    yield row, reader.line_num, cells
        except csv.Error as exc:
            raise invalid_csv(self.path, reader.line_num, exc) from None


def open_csv(
    handle: IO[bytes], path: Path, counter: ByteCounter | None = None, refuse_nul: bool = True
) -> CsvFile:
    """Read and check the header of the CSV ``handle`` (opened in binary mode)."""
    csv.field_size_limit(FIELD_LIMIT)  # process-wide; every reader here wants the same
    reader = csv.reader(text_lines(handle, path, counter or ByteCounter(), refuse_nul), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise invalid_csv(path, reader.line_num, exc) from None
    check_header(path, header)
    return CsvFile(path, header, reader)


def check_header(path: Path, header: list[str] | None) -> None:
    """Refuse a header that is empty or names a column twice (one pass: a wide file has thousands)."""
    if not header:
        raise UserError(f"{path} is empty: it needs a header row naming the columns")
    duplicates = sorted(name for name, count in collections.Counter(header).items() if count > 1)
    if duplicates:
        raise UserError(f"{path} has duplicate column names {duplicates}: rename them")


def invalid_csv(path: Path, line: int, exc: csv.Error) -> UserError:
    """The UserError for csv.reader's ``exc`` at ``line`` (its words for a CR made plain)."""
    reason = str(exc)
    if "new-line character" in reason:  # csv's own words suggest newline='', which is not the fix
        reason = "a carriage return inside an unquoted field: save the file with LF or CRLF line ends"
    return UserError(f"{path} line {line} is not valid CSV ({reason})")

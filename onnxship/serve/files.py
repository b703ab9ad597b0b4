"""Scoring files: CSV and JSON-lines readers, the scores writer, a progress bar, ``score_file``.

Streaming: rows are read, scored in batches and written as they go, so memory stays bounded; the
output (and the summary) appear only if the whole input was scored (temp file + rename).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from onnxship.contract.encode import InvalidRecord
from onnxship.core.errors import UserError
from onnxship.core.files import atomic_open, atomic_write_text
from onnxship.serve.scorer import Scorer

MAX_LISTED = 20  # invalid rows listed in the summary


# --- reading input files --------------------------------------------------------------------------


class _Counter:
    """Bytes read so far, for the progress bar."""

    def __init__(self) -> None:
        self.bytes = 0


def _text_lines(handle: IO[bytes], path: Path, counter: _Counter) -> Iterator[str]:
    """Decoded lines of a binary file, counting bytes as they go (a BOM is dropped)."""
    for number, raw in enumerate(handle, 1):
        counter.bytes += len(raw)
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{path} line {number} is not UTF-8 text: save the file as UTF-8") from None


def read_csv(
    handle: IO[bytes], path: Path, counter: _Counter, required: Sequence[str]
) -> Iterator[tuple[int, int, Any]]:
    """(row, line, record) per data row; a record is a dict, or an InvalidRecord for a bad row."""
    reader = csv.reader(_text_lines(handle, path, counter), strict=True)
    try:
        header = next(reader, None)
        if not header:
            raise UserError(f"{path} is empty: it needs a header row naming the columns")
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise UserError(f"{path} has duplicate column names {duplicates}: rename them")
        absent = [name for name in required if name not in header]
        if absent:
            raise UserError(
                f"{path} has no column {', '.join(repr(n) for n in absent)}: the model needs every input "
                "column (an empty cell means a missing value)"
            )
        row = 0
        for cells in reader:
            if not cells:
                continue  # a blank line is not a row (as at training time)
            row += 1
            if len(cells) != len(header):
                yield (
                    row,
                    reader.line_num,
                    InvalidRecord(
                        row,
                        None,
                        f"has {len(cells)} fields but the header has {len(header)}",
                        reader.line_num,
                    ),
                )
            else:
                yield row, reader.line_num, dict(zip(header, cells, strict=True))
    except csv.Error as exc:
        raise UserError(f"{path} line {reader.line_num} is not valid CSV ({exc})") from None


def read_jsonl(handle: IO[bytes], path: Path, counter: _Counter) -> Iterator[tuple[int, int, Any]]:
    """(row, line, record) per non-blank line; a line that is not a JSON object is an InvalidRecord."""
    row = 0
    for line, text in enumerate(_text_lines(handle, path, counter), 1):
        if not text.strip():
            continue
        row += 1
        try:
            record = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            yield row, line, InvalidRecord(row, None, f"is not valid JSON ({exc.msg})", line)
            continue
        except ValueError as exc:  # a duplicate key, or NaN/Infinity (not JSON; Node refuses them too)
            yield row, line, InvalidRecord(row, None, f"is not valid JSON ({exc})", line)
            continue
        if not isinstance(record, dict):
            yield row, line, InvalidRecord(row, None, "is not a JSON object {...}", line)
        else:
            yield row, line, record


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object, refusing a key given twice (json.loads would keep the last value silently)."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"duplicate key {twice!r}")
    return record


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON: write null for a missing value")


def read_csv_records(path: str | Path, limit: int | None = None) -> list[dict[str, str]]:
    """The first ``limit`` (or all) data rows of a CSV as dicts of strings, as a CSV reader gives them."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input file {path} not found")
    records: list[dict[str, str]] = []
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise UserError(f"input file {path} cannot be read ({exc.strerror})") from None
    with handle:
        for _, _, record in read_csv(handle, path, _Counter(), []):
            if isinstance(record, InvalidRecord):
                raise UserError(f"{path} {record}")
            records.append(record)
            if limit is not None and len(records) >= limit:
                break
    if not records:
        raise UserError(f"{path} has no data rows")
    return records


FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def file_format(path: Path, given: str | None, what: str) -> str:
    if given:
        return given
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise UserError(
            f"cannot tell the format of {what} {path} from its suffix: name it .csv or .jsonl, "
            f"or pass --{what}-format"
        ) from None


# --- writing output ----------------------------------------------------------------------------------


def atomic_output(path: Path) -> Iterator[IO[str]]:
    """The scores file: appears at ``path`` only if scoring completes."""
    return atomic_open(path, "w", encoding="utf-8", newline="")


class _Writer:
    """Scores as CSV (row,probability,decision,label) or JSON lines, probability as an exact float."""

    def __init__(self, handle: IO[str], fmt: str) -> None:
        self.handle, self.fmt = handle, fmt
        if fmt == "csv":
            handle.write("row,probability,decision,label\n")

    def write(
        self, rows: Sequence[int], probability: np.ndarray, decision: np.ndarray, scorer: Scorer
    ) -> None:
        lines = []
        for row, p, d in zip(rows, probability.tolist(), decision.tolist(), strict=True):
            label = scorer.label(d)
            if self.fmt == "csv":
                lines.append(f"{row},{p!r},{int(d)},{_csv_cell(label)}\n")
            else:
                lines.append(json.dumps({"row": row, "probability": p, "decision": d, "label": label}) + "\n")
        self.handle.write("".join(lines))


def _csv_cell(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


class Progress:
    """A one-line progress bar on stderr, redrawn at most every ``interval`` seconds."""

    def __init__(self, total_bytes: int, enabled: bool, stream: IO[str] | None = None) -> None:
        self.total, self.enabled = max(total_bytes, 1), enabled
        self.stream = stream or sys.stderr
        self.interval, self.last = 0.2, 0.0

    def update(self, done_bytes: int, rows: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < self.interval):
            return
        self.last = now
        fraction = min(done_bytes / self.total, 1.0)
        bar = "#" * int(30 * fraction)
        self.stream.write(f"\rscoring [{bar:<30}] {fraction:4.0%} {rows:,} rows")
        if final:
            self.stream.write("\n")
        self.stream.flush()


# --- scoring a file -------------------------------------------------------------------------------


def score_file(
    scorer: Scorer,
    input_path: str | Path,
    output_path: str | Path,
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    batch_size: int = 1024,
    skip_invalid: bool = False,
    progress: str = "auto",
    summary_path: str | Path | None = None,
) -> dict:
    """Score a CSV or JSON-lines file in batches of ``batch_size`` rows, streaming (bounded memory).

    The output (and the summary) appear only if the whole input was scored. An invalid row stops
    scoring with an InvalidRecord, or with ``skip_invalid`` is left out and counted in the summary.
    """
    source, target = Path(input_path), Path(output_path)
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    if not source.is_file():
        raise UserError(f"input file {source} not found")
    if target.resolve() == source.resolve():
        raise UserError("the output file is the input file: write the scores to another file")
    in_fmt = file_format(source, input_format, "input")
    out_fmt = file_format(target, output_format, "output")
    for path in (target, Path(summary_path) if summary_path is not None else None):
        # A typo in the folder should not create a new folder tree somewhere.
        if path is not None and not path.parent.is_dir():
            raise UserError(f"the folder of {path} does not exist: create {path.parent} first")
    size = source.stat().st_size
    show = progress == "always" or (progress == "auto" and sys.stderr.isatty() and size >= 1 << 20)
    bar = Progress(size, show)
    counter = _Counter()
    summary: dict[str, Any] = {
        "input": str(source),
        "output": str(target),
        "rows_read": 0,
        "rows_scored": 0,
        "rows_skipped": 0,
        "positives": 0,
        "invalid": [],
    }
    batch_rows: list[int] = []
    batch_values: list[list] = []

    def flush(writer: _Writer) -> None:
        probability = scorer.probabilities(scorer.feeds(batch_values))
        decision = scorer.decide(probability)
        writer.write(batch_rows, probability, decision, scorer)
        summary["rows_scored"] += len(batch_rows)
        summary["positives"] += int(decision.sum())
        batch_rows.clear()
        batch_values.clear()

    try:
        handle = open(source, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise UserError(f"input file {source} cannot be read ({exc.strerror})") from None
    with handle, atomic_output(target) as out:
        writer = _Writer(out, out_fmt)
        if in_fmt == "csv":
            records = read_csv(handle, source, counter, [spec["name"] for spec in scorer.inputs])
        else:
            records = read_jsonl(handle, source, counter)
        for row, line, record in records:
            summary["rows_read"] += 1
            try:
                if isinstance(record, InvalidRecord):
                    raise record
                batch_values.append(scorer.values(record, row, line))
                batch_rows.append(row)
            except InvalidRecord as invalid:
                if not skip_invalid:
                    raise UserError(
                        f"{source} {invalid}; fix the input, or pass --skip-invalid to leave such rows out"
                    ) from None
                summary["rows_skipped"] += 1
                if len(summary["invalid"]) < MAX_LISTED:
                    summary["invalid"].append(invalid.to_dict())
            if len(batch_values) >= batch_size:
                flush(writer)
                bar.update(counter.bytes, summary["rows_read"])
        if batch_values:
            flush(writer)
        bar.update(counter.bytes, summary["rows_read"], final=True)
        if summary_path is not None:
            atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    return summary

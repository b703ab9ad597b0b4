"""Scoring files: CSV and JSON-lines readers, the scores writer, a progress bar, ``score_file``.

Streaming: rows are read, scored in batches and written as they go, so memory stays bounded; the
output (and the summary) appear only if the whole input was scored (temp file + rename).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from onnxship.contract.csvfile import ByteCounter, open_csv, text_lines
from onnxship.contract.encode import InvalidRecord
from onnxship.core.errors import UserError
from onnxship.core.files import atomic_open
from onnxship.serve.json_lines import JSON_SPACE, json_record
from onnxship.serve.passthrough import JsonRecord, Passthrough
from onnxship.serve.scorer import Scorer
from onnxship.serve.summary import ScoreSummary, require_columns, require_folder, same_file

# --- reading input files --------------------------------------------------------------------------


def read_csv(
    handle: IO[bytes],
    path: Path,
    counter: ByteCounter,
    required: Sequence[str],
    passthrough: Passthrough | None = None,
) -> Iterator[tuple[int, int, Any]]:
    """(row, line, record) per data row; a record is a dict, or an InvalidRecord for a bad row. The
    header must hold the ``required`` columns and those ``passthrough`` copies. The file's rules
    (encoding, NUL bytes, line ends, ragged rows) are onnxship.contract.csvfile's, as at training."""
    table = open_csv(handle, path, counter, refuse_nul=False)  # NUL: refused per record
    header = table.header
    require_columns(path, header, required)
    if passthrough is not None:
        passthrough.check_header(path, header)
    for row, line, cells in table.rows():
        if isinstance(cells, InvalidRecord):
            yield row, line, cells
        else:
            yield row, line, dict(zip(header, cells, strict=True))


def read_jsonl(
    handle: IO[bytes], path: Path, counter: ByteCounter, keep_text: bool = False
) -> Iterator[tuple[int, int, Any]]:
    """(row, line, record) per non-blank line; a line that is not a JSON object is an InvalidRecord.
    With ``keep_text`` a record is a JsonRecord holding its line (to copy numbers as written)."""
    row = 0
    for line, text in enumerate(text_lines(handle, path, counter, refuse_nul=False), 1):
        if not text.strip(JSON_SPACE):  # blank: JSON's own white space only (not a BOM, not U+00A0)
            continue
        row += 1
        try:
            record = json_record(text)
        except ValueError as exc:
            yield row, line, InvalidRecord(row, None, f"is not valid JSON ({exc})", line)
            continue
        if not isinstance(record, dict):
            yield row, line, InvalidRecord(row, None, "is not a JSON object {...}", line)
        elif keep_text:
            record = JsonRecord(record)
            record.text = text
            yield row, line, record
        else:
            yield row, line, record


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
        for _, _, record in read_csv(handle, path, ByteCounter(), []):
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


@contextmanager
def atomic_output(path: Path) -> Iterator[IO[str]]:
    """The scores file: appears at ``path`` only if scoring completes. An OSError on the way (a full
    disk, a folder made read-only meanwhile) is one line, and nothing is left behind."""
    try:
        with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
            yield handle
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


class _Writer:
    """Scores as CSV (row,[copied fields,]probability,decision,label) or JSON lines with the same
    keys, probability as an exact float; copied fields (``--id-column``, ``--keep``) as text."""

    def __init__(self, handle: IO[str], fmt: str, fields: Sequence[str] = ()) -> None:
        self.handle, self.fmt, self.fields = handle, fmt, tuple(fields)
        if fmt == "csv":
            names = ["row", *self.fields, "probability", "decision", "label"]
            handle.write(",".join(_csv_cell(n) for n in names) + "\n")

    def write(self, batch: _Batches, probability: np.ndarray, decision: np.ndarray) -> None:
        lines, label_of = [], batch.scorer.label
        rows, kept = batch.rows, batch.kept
        for i, (p, d) in enumerate(zip(probability.tolist(), decision.tolist(), strict=True)):
            if self.fmt == "csv":
                copied = "".join(f"{_csv_cell(text)}," for text in kept[i])
                lines.append(f"{rows[i]},{copied}{p!r},{int(d)},{_csv_cell(label_of(d))}\n")
            else:
                record = {"row": rows[i], **dict(zip(self.fields, kept[i], strict=True))}
                record.update(probability=p, decision=d, label=label_of(d))
                lines.append(json.dumps(record) + "\n")
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


@dataclass(frozen=True)
class FileOptions:
    """How to read, score and report one file (the command line's options of the same names)."""

    input_format: str | None = None  # "csv" or "jsonl"; default: from the suffix
    output_format: str | None = None  # "csv" or "jsonl"; default: from the suffix
    batch_size: int = 1024  # rows per session.run
    skip_invalid: bool = False  # leave invalid rows out and count them, instead of stopping
    progress: str = "auto"  # "auto" (a terminal and 1 MiB or more), "always" or "never"
    summary_path: str | Path | None = None  # also write the summary JSON here
    passthrough: Passthrough = field(default_factory=Passthrough)  # --id-column, --keep


def score_file(
    scorer: Scorer, input_path: str | Path, output_path: str | Path, options: FileOptions | None = None
) -> ScoreSummary:
    """Score a CSV or JSON-lines file in batches of ``batch_size`` rows, streaming (bounded memory).

    The output (and the summary) appear only if the whole input was scored. An invalid row stops
    scoring with an InvalidRecord, or with ``skip_invalid`` is left out and counted in the summary.
    """
    options = options or FileOptions()
    source, target = Path(input_path), Path(output_path)
    in_fmt, out_fmt = _check_paths(source, target, options)
    size = source.stat().st_size
    progress = options.progress
    show = progress == "always" or (progress == "auto" and sys.stderr.isatty() and size >= 1 << 20)
    summary = ScoreSummary(str(input_path), str(output_path))
    try:
        handle = open(source, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise UserError(f"input file {source} cannot be read ({exc.strerror})") from None
    with handle, atomic_output(target) as out:
        counter = ByteCounter()
        kept = options.passthrough
        if in_fmt == "csv":
            records = read_csv(handle, source, counter, [spec["name"] for spec in scorer.inputs], kept)
        else:
            records = read_jsonl(handle, source, counter, keep_text=bool(kept.fields))
        batches = _Batches(scorer, _Writer(out, out_fmt, kept.fields), summary, options.batch_size)
        bar = Progress(size, show)
        for row, line, record in records:
            summary.rows_read += 1
            try:
                if isinstance(record, InvalidRecord):
                    raise record
                copied = kept.values(record, row, line) if kept.fields else []
                batches.add(row, scorer.values(record, row, line), copied)
            except InvalidRecord as invalid:
                if not options.skip_invalid:
                    raise UserError(
                        f"{source} {invalid}; fix the input, or pass --skip-invalid to leave such rows out"
                    ) from None
                summary.add_skipped(invalid.to_dict())
            if batches.full():
                batches.flush()
                bar.update(counter.bytes, summary.rows_read)
        batches.flush()
        bar.update(counter.bytes, summary.rows_read, final=True)
        if options.summary_path is not None:
            summary.write(options.summary_path)
    return summary


def _check_paths(source: Path, target: Path, options: FileOptions) -> tuple[str, str]:
    """Refuse what would fail or harm before anything is read; the input's and output's formats."""
    if options.batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {options.batch_size}")
    if not source.is_file():
        raise UserError(f"input file {source} not found")
    summary = None if options.summary_path is None else Path(options.summary_path)
    check_outputs(source, target, summary)
    in_fmt = file_format(source, options.input_format, "input")
    out_fmt = file_format(target, options.output_format, "output")
    return in_fmt, out_fmt


def check_outputs(source: Path, target: Path, summary: Path | None = None) -> None:
    """Refuse an output or summary that would overwrite the input or each other (whatever the
    spelling: symlinks, hard links, "a/../b"), that names a folder, or whose folder does not exist."""
    named = [("output", target)] + ([("summary", summary)] if summary is not None else [])
    for what, path in named:
        if same_file(path, source):
            raise UserError(f"the {what} file is the input file: write the {what} to another file")
        if path.is_dir():
            raise UserError(f"the {what} {path} is a folder: name a file to write")
        require_folder(path)
    if summary is not None and same_file(summary, target):
        raise UserError("the summary file is the output file: write them to two files")


class _Batches:
    """Rows waiting for one ``session.run``: scored and written when full, counted in the summary."""

    def __init__(self, scorer: Scorer, writer: _Writer, summary: ScoreSummary, size: int) -> None:
        self.scorer, self.writer, self.summary, self.size = scorer, writer, summary, size
        self.rows: list[int] = []
        self.values: list[list] = []
        self.kept: list[list[str]] = []

    def add(self, row: int, values: list, kept: list[str]) -> None:
        self.rows.append(row)
        self.values.append(values)
        self.kept.append(kept)

    def full(self) -> bool:
        return len(self.values) >= self.size

    def flush(self) -> None:
        if not self.values:
            return
        probability = self.scorer.probabilities(self.scorer.feeds(self.values))
        decision = self.scorer.decide(probability)
        self.writer.write(self, probability, decision)
        self.summary.add_scored(len(self.rows), int(decision.sum()))
        self.rows.clear()
        self.values.clear()
        self.kept.clear()

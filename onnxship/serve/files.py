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

from onnxship.contract.columns import TextCells
from onnxship.contract.csvfile import ByteCounter, text_lines
from onnxship.contract.encode import InvalidRecord
from onnxship.core.errors import UserError
from onnxship.core.files import atomic_open
from onnxship.serve.chunks import MIN_CELLS, CsvChunks, Item, JsonChunks
from onnxship.serve.json_lines import JSON_SPACE, json_record
from onnxship.serve.passthrough import JsonRecord, Passthrough
from onnxship.serve.scorer import Scorer
from onnxship.serve.summary import ScoreSummary, require_folder, same_file

# --- reading input files --------------------------------------------------------------------------


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
        chunks = CsvChunks(handle, path, ByteCounter(), [], None)
        while limit is None or len(records) < limit:
            chunk = chunks.chunk(1024 if limit is None else min(1024, limit - len(records)))
            if chunk is None:
                break
            for _, _, record in _items(chunk):
                if isinstance(record, InvalidRecord):
                    raise UserError(f"{path} {record}")
                if isinstance(record, UserError):
                    raise record
                records.append(record)
    if not records:
        raise UserError(f"{path} has no data rows")
    return records


def _items(chunk: TextCells | list[Item]) -> list[Item]:
    """A chunk as (row, line, record) items."""
    if isinstance(chunk, TextCells):
        return [
            (row, line, chunk.record(i))
            for i, (row, line) in enumerate(zip(chunk.rows, chunk.lines, strict=True))
        ]
    return chunk


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
        rows, kept, label_of = batch.rows, batch.kept, batch.scorer.label
        if self.fmt == "csv":
            ends = {d: f",{int(d)},{_csv_cell(label_of(d))}\n" for d in (False, True)}
            scores = map("{!r}".format, probability.tolist())
            if self.fields:
                copied = ["".join(f"{_csv_cell(text)}," for text in texts) for texts in kept]
                lines = map("{},{}{}{}".format, rows, copied, scores, map(ends.get, decision.tolist()))
            else:
                lines = map("{},{}{}".format, rows, scores, map(ends.get, decision.tolist()))
            self.handle.write("".join(lines))
            return
        lines = []
        for i, (p, d) in enumerate(zip(probability.tolist(), decision.tolist(), strict=True)):
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
            required = [spec["name"] for spec in scorer.inputs]
            chunks: CsvChunks | JsonChunks = CsvChunks(handle, source, counter, required, kept)
        else:
            chunks = JsonChunks(read_jsonl(handle, source, counter, keep_text=bool(kept.fields)))
        batches = _Batches(scorer, _Writer(out, out_fmt, kept.fields), summary, options.batch_size)
        bar = Progress(size, show)
        while (chunk := chunks.chunk(batches.room())) is not None:
            batches.take(chunk, source, options)
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
    """Rows waiting for one ``session.run``, kept as feeds (``Encoder.encode``): scored and
    written when full, counted in the summary. Chunks are taken whole when every row is good;
    otherwise row by row, as the scorer always did, so errors and skipped rows are the same."""

    def __init__(self, scorer: Scorer, writer: _Writer, summary: ScoreSummary, size: int) -> None:
        self.scorer, self.writer, self.summary, self.size = scorer, writer, summary, size
        self.rows: list[int] = []
        self.kept: list[list[str]] = []
        self.parts: list[dict[str, np.ndarray]] = []  # the feeds of the rows so far, in parts
        self.values: list[list] = []  # rows taken one by one, not yet made columns

    def room(self) -> int:
        return self.size - len(self.rows)

    def full(self) -> bool:
        return len(self.rows) >= self.size

    def take(self, chunk: TextCells | list[Item], source: Path, options: FileOptions) -> None:
        """Add a chunk's rows (at most ``room()``): whole if it can, else row by row."""
        whole = len(chunk) * len(self.scorer.inputs) >= MIN_CELLS  # else cheaper row by row
        if whole and (isinstance(chunk, TextCells) or not any(isinstance(i[2], UserError) for i in chunk)):
            try:
                self._take_whole(chunk, options.passthrough)
                return
            except InvalidRecord:
                pass
        for row, line, record in _items(chunk):
            if isinstance(record, UserError) and not isinstance(record, InvalidRecord):
                raise record  # the file ends here: not CSV, or not UTF-8
            self.summary.rows_read += 1
            try:
                if isinstance(record, InvalidRecord):
                    raise record
                copied = options.passthrough.values(record, row, line) if options.passthrough.fields else []
                values = self.scorer.values(record, row, line)
            except InvalidRecord as invalid:
                if not options.skip_invalid:
                    raise UserError(
                        f"{source} {invalid}; fix the input, or pass --skip-invalid to leave such rows out"
                    ) from None
                self.summary.add_skipped(invalid.to_dict())
                continue
            self.rows.append(row)
            self.kept.append(copied)
            self.values.append(values)

    def _take_whole(self, chunk: TextCells | list[Item], kept: Passthrough) -> None:
        """Every row of ``chunk`` at once; InvalidRecord (and nothing added) if one is bad."""
        if isinstance(chunk, TextCells):
            numbered = list(zip(chunk.rows, chunk.lines, strict=True))
            feeds = self.scorer.encoder.encode(chunk)
            where = {name: chunk.fields.index(name) for name in kept.fields}  # only the copied cells
            records = [{name: chunk.text(i, j) for name, j in where.items()} for i in range(len(chunk))]
        else:
            numbered = [(row, line) for row, line, _ in chunk]
            records = [record for _, _, record in chunk]
            feeds = self.scorer.encoder.encode(records)
        if kept.fields:
            copied = [kept.values(r, row, line) for r, (row, line) in zip(records, numbered, strict=True)]
        self._feeds_so_far()
        self.parts.append(feeds)
        self.rows.extend(row for row, _ in numbered)
        self.kept.extend(copied if kept.fields else [[]] * len(numbered))
        self.summary.rows_read += len(numbered)

    def _feeds_so_far(self) -> None:
        if self.values:
            self.parts.append(self.scorer.encoder.feeds(self.values))
            self.values = []

    def flush(self) -> None:
        self._feeds_so_far()
        if not self.rows:
            return
        parts = self.parts
        feeds = (
            parts[0]
            if len(parts) == 1
            else {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        )
        probability = self.scorer.probabilities(feeds)
        decision = self.scorer.decide(probability)
        self.writer.write(self, probability, decision)
        self.summary.add_scored(len(self.rows), int(decision.sum()))
        self.rows.clear()
        self.kept.clear()
        self.parts = []

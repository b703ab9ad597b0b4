"""Standalone scorer: raw records in, probability and decision out, from the contract files alone.

Only numpy and onnxruntime (plus the standard library and the dependency-free onnxship modules
``contract``, ``errors`` and ``io``): no scikit-learn, pandas or joblib, and nothing is unpickled, so
it runs wherever ONNX Runtime does. It reads ``model.onnx``, ``onnx_features.json`` and
``onnx_metadata.json`` and follows the contract exactly as the README documents it, including the
missing-value tokens and the number syntax, which it takes from onnx_features.json.

Library::

    scorer = Scorer("artifacts")
    probability, decision = scorer.score_record({"state": "KS", "account_length": "128", ...})

Command line::

    python -m onnxship.scorer score --artifacts artifacts --input rows.csv --output scores.csv
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import numbers
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import onnxruntime as ort

from onnxship.contract import session as new_session
from onnxship.errors import UserError
from onnxship.io import atomic_open, atomic_write_text

CONTRACT_VERSION = 1
VERSION_CHECKS = ("strict", "warn", "off")
# float64 values of this magnitude or more round to infinity in float32 (float32 max + half an ulp).
FLOAT32_LIMIT = 3.4028235677973366e38
# Contract v1's number_pattern (onnxship.export.NUMBER_PATTERN; a test keeps the two equal). For this
# pattern a cheaper equivalent check is used: a string made only of these characters is a number
# under the pattern exactly when float() accepts it (float also takes "1_000", "inf", "nan" and
# Unicode digits or spaces, none of which is made of these characters).
V1_NUMBER_PATTERN = r"^[ \t]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t]*$"
NUMBER_CHARS = " \t0123456789.eE+-"
OVERHEAD_GOAL = 0.30  # the scorer's own path may cost at most 30 % more than a bare session.run
MAX_LISTED = 20  # invalid rows listed in the summary
NAN = float("nan")


class ScorerWarning(UserWarning):
    """Something a user should know that does not stop scoring (e.g. a minor ONNX Runtime mismatch)."""


class InvalidRecord(UserError):
    """One input record breaks the contract; ``row`` is its 1-based number in the input."""

    def __init__(self, row: int, column: str | None, reason: str, line: int | None = None) -> None:
        self.row, self.column, self.reason, self.line = row, column, reason, line
        where = f"row {row}" + (f" (line {line})" if line is not None else "")
        super().__init__(f"{where}, column '{column}': {reason}" if column else f"{where}: {reason}")

    def to_dict(self) -> dict:
        return {"row": self.row, "line": self.line, "column": self.column, "reason": self.reason}


# --- loading and checking the artifacts ---------------------------------------------------------


def _read_json(path: Path) -> tuple[dict, bytes]:
    if not path.is_file():
        raise UserError(f"{path} not found: point --artifacts at the folder the export stage wrote")
    data = path.read_bytes()
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); re-run the export stage (dvc repro)") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a JSON object; re-run the export stage (dvc repro)")
    version = obj.get("schema_version")
    if version != CONTRACT_VERSION:
        raise UserError(
            f"{path} has schema_version {version!r}; this scorer reads contract version "
            f"{CONTRACT_VERSION}: use the onnxship that exported the model"
        )
    return obj, data


def _major_minor(version: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def check_runtime(recorded: str, installed: str, policy: str = "strict") -> str | None:
    """Compare the ONNX Runtime that exported the model with the installed one.

    A different major version fails under ``strict``; any other difference in major.minor is a
    warning (returned and emitted as a ScorerWarning). ``off`` checks nothing.
    """
    if policy not in VERSION_CHECKS:
        raise UserError(f"version check {policy!r} is not one of {', '.join(VERSION_CHECKS)}")
    if policy == "off":
        return None
    want, have = _major_minor(recorded), _major_minor(installed)
    if want is None or have is None:
        message = f"cannot compare onnxruntime versions (exported with {recorded!r}, installed {installed!r})"
    elif want == have:
        return None
    elif want[0] != have[0] and policy == "strict":
        raise UserError(
            f"onnxruntime {installed} is installed but the model was exported and checked with "
            f"{recorded} (a different major version): install onnxruntime=={recorded}, "
            "or pass --version-check warn to score anyway"
        )
    else:
        message = (
            f"onnxruntime {installed} is installed but the model was exported and checked with {recorded}: "
            "scores may differ slightly from the parity report"
        )
    warnings.warn(message, ScorerWarning, stacklevel=2)
    return message


# --- the scorer -------------------------------------------------------------------------------------


class Scorer:
    """Scores raw records with ``model.onnx`` following ``onnx_features.json`` and ``onnx_metadata.json``.

    Loading verifies the model's sha256 and the features file's sha256 against the metadata, the
    graph's inputs against the features file, and the ONNX Runtime version (``version_check``).
    """

    def __init__(
        self,
        artifacts: str | Path,
        version_check: str = "strict",
        threads: int = 1,
        model_file: str | None = None,
    ) -> None:
        """``model_file`` scores another graph with the same inputs and outputs (the INT8 file) in
        place of the metadata's ``model_file``; the metadata's sha256 describes only that one, so
        the hash check is skipped for it."""
        folder = Path(artifacts)
        self._model_file = model_file
        self.features, features_bytes = _read_json(folder / "onnx_features.json")
        self.metadata, _ = _read_json(folder / "onnx_metadata.json")
        try:
            self._load(folder, features_bytes, version_check, threads)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            # A contract file that parses but lacks what it must say: not a bug of the caller's.
            raise UserError(
                f"{folder}/onnx_features.json or onnx_metadata.json is incomplete ({type(exc).__name__}: "
                f"{exc}); re-run the export stage (dvc repro)"
            ) from None
        self._local = threading.local()

    def _load(self, folder: Path, features_bytes: bytes, version_check: str, threads: int) -> None:
        meta, features = self.metadata, self.features
        if hashlib.sha256(features_bytes).hexdigest() != meta["features_sha256"]:
            raise UserError(
                f"{folder}/onnx_features.json does not match the sha256 in onnx_metadata.json: "
                "the two files come from different exports; copy both from the same export"
            )
        model_path = folder / (self._model_file or meta["model_file"])
        if not model_path.is_file():
            raise UserError(f"{model_path} not found: copy it with the JSON files it belongs to")
        # Hash the very bytes the session loads, so the file cannot change in between.
        model_bytes = model_path.read_bytes()
        actual = hashlib.sha256(model_bytes).hexdigest()
        if self._model_file is None and actual != meta["model_sha256"]:
            raise UserError(
                f"{model_path} has sha256 {actual[:12]}..., but onnx_metadata.json records "
                f"{meta['model_sha256'][:12]}...: refusing a model the contract does not describe; "
                "copy model.onnx and its JSON files from the same export"
            )
        check_runtime(meta["versions"]["onnxruntime"], ort.__version__, version_check)
        self.session = new_session(model_bytes, threads)

        numeric, categorical = features["encoding"]["numeric"], features["encoding"]["categorical"]
        if categorical["missing_tokens"] != [categorical["missing_value"]]:
            raise UserError("onnx_features.json states categorical missing tokens this scorer does not know")
        self._to_number = number_converter(numeric["missing_tokens"], numeric["number_pattern"])
        self._to_category = to_category
        self.inputs: list[dict] = features["inputs"]
        graph = {i.name: i.type for i in self.session.get_inputs()}
        expected = {
            spec["onnx_name"]: "tensor(float)" if spec["dtype"] == "float32" else "tensor(string)"
            for spec in self.inputs
        }
        if graph != expected:
            raise UserError(
                f"{model_path} has inputs {graph}, but onnx_features.json describes {expected}: "
                "copy model.onnx and its JSON files from the same export"
            )
        # (field name, ONNX input name, converter, dtype) in input order: the per-record hot loop.
        self._specs: list[tuple[str, str, Callable[[Any], Any], Any]] = [
            (
                spec["name"],
                spec["onnx_name"],
                self._to_number if spec["dtype"] == "float32" else self._to_category,
                np.float32 if spec["dtype"] == "float32" else object,
            )
            for spec in self.inputs
        ]
        self.threshold = float(meta["threshold"])
        self.positive_label, self.negative_label = meta["positive_label"], meta["negative_label"]
        self.probability_output = meta["probability_output"]
        self._column = int(meta["positive_class_index"])
        self._outputs = [self.probability_output]
        if meta["decision_operator"] != ">=" or meta["decision_precision"] != "float64":
            raise UserError("onnx_metadata.json states a decision rule this scorer does not implement")

    # -- records ---------------------------------------------------------------------------------

    def values(self, record: Mapping[str, Any], row: int, line: int | None = None) -> list:
        """The record's converted values in input order; InvalidRecord names the first bad field."""
        if not isinstance(record, Mapping):
            raise InvalidRecord(row, None, f"expected an object of field: value, got {type(record).__name__}")
        out = []
        for name, _, convert, _ in self._specs:
            try:
                value = record[name]
            except KeyError:
                raise InvalidRecord(
                    row, name, "the field is missing: send it (null or an empty value means missing)", line
                ) from None
            try:
                out.append(convert(value))
            except ValueError as exc:
                raise InvalidRecord(row, name, str(exc), line) from None
        return out

    def feeds(self, rows: Sequence[Sequence]) -> dict[str, np.ndarray]:
        """ONNX inputs ([n, 1] each) from rows of converted values (``values``)."""
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in self._specs]
        return {
            onnx_name: np.array(column, dtype=dtype).reshape(-1, 1)
            for (_, onnx_name, _, dtype), column in zip(self._specs, columns, strict=True)
        }

    def probabilities(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """The positive-class probability per row: float32 values widened to float64 (exactly)."""
        output = self.session.run(self._outputs, feeds)[0]
        return output[:, self._column].astype(np.float64)

    def decide(self, probability: np.ndarray) -> np.ndarray:
        """The contract's rule: positive if p >= threshold, compared in float64."""
        return probability >= self.threshold

    def score_records(self, records: Iterable[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and decisions for a batch of records (rows numbered from 1 in errors)."""
        rows = [self.values(record, row) for row, record in enumerate(records, 1)]
        if not rows:
            return np.empty(0, dtype=np.float64), np.empty(0, dtype=bool)
        probability = self.probabilities(self.feeds(rows))
        return probability, self.decide(probability)

    def score_record(self, record: Mapping[str, Any]) -> tuple[float, bool]:
        """(probability, decision) for one record: the lean path for online serving.

        The [1, 1] input arrays are allocated once per thread and refilled in place: allocating
        19 small arrays per call would cost about a third of the model's own run time.
        """
        slots = getattr(self._local, "slots", None)
        if slots is None:
            slots = self._allocate()
        if not isinstance(record, Mapping):
            raise InvalidRecord(1, None, f"expected an object of field: value, got {type(record).__name__}")
        for name, array, convert in slots:
            try:
                value = record[name]
            except KeyError:
                raise InvalidRecord(
                    1, name, "the field is missing: send it (null or an empty value means missing)"
                ) from None
            try:
                array[0, 0] = convert(value)
            except ValueError as exc:
                raise InvalidRecord(1, name, str(exc)) from None
        probability = float(self.session.run(self._outputs, self._local.feeds)[0][0, self._column])
        return probability, probability >= self.threshold

    def _allocate(self) -> list:
        feeds = {onnx_name: np.empty((1, 1), dtype=dtype) for _, onnx_name, _, dtype in self._specs}
        slots = [(name, feeds[onnx_name], convert) for name, onnx_name, convert, _ in self._specs]
        self._local.feeds, self._local.slots = feeds, slots
        return slots

    def label(self, decision: bool) -> str:
        return self.positive_label if decision else self.negative_label


# --- one cell -----------------------------------------------------------------------------------------


def number_converter(missing_tokens: Sequence[str], number_pattern: str) -> Callable[[Any], float]:
    """The contract's rule for a numeric cell, as a function: value -> float64 (NaN if missing).

    float32 rounding happens when the tensor is built. A closure over locals, as this runs once per
    numeric field of every record.
    """
    missing = frozenset(missing_tokens)
    listed = sorted(missing)
    if number_pattern == V1_NUMBER_PATTERN:

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
                    f"{value!r} is not a number: write a decimal number such as 12.5, or one of "
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
            raise ValueError(f"expected a number, text or null, got {type(value).__name__} {value!r}")
        if not -FLOAT32_LIMIT < number < FLOAT32_LIMIT:
            raise ValueError(f"{value!r} is infinite or beyond the float32 range (about ±3.4e38)")
        return number

    return to_number


def to_category(value: Any) -> str:
    """A categorical cell as the string the model sees ("" if missing; unseen ones unchanged)."""
    if type(value) is str:
        return value  # "" is already the missing value; an unseen category passes through
    if value is None or (type(value) is float and value != value):
        return ""
    raise ValueError(
        f"expected text or null, got {type(value).__name__} {value!r}: categories are strings "
        '(write it as text, e.g. "3" rather than 3)'
    )


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
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield row, line, InvalidRecord(row, None, f"is not valid JSON ({exc.msg})", line)
            continue
        if not isinstance(record, dict):
            yield row, line, InvalidRecord(row, None, "is not a JSON object {...}", line)
        else:
            yield row, line, record


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

    with open(source, "rb") as handle, atomic_output(target) as out:
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


# --- the scorer's own overhead ----------------------------------------------------------------------


def overhead(
    artifacts_dir: str | Path,
    rows: Sequence[Mapping[str, Any]],
    repetitions: int = 2000,
    warmup: int = 200,
    threads: int = 1,
    version_check: str = "strict",
) -> dict:
    """p50 latency at batch 1 of ``score_record`` (record -> validated feeds -> run -> decision)
    against a bare ``session.run`` on feeds built beforehand, on the same session and rows.

    The two are timed alternately, call by call, so that drift in CPU speed hits both alike, and
    which goes first alternates too. They score different rows in each pair: a model that has just
    scored a row scores it again faster (its tree paths are in cache), which would flatter the second.
    The goal is ``ratio <= 1.3`` (at most 30 % overhead).
    """
    if not rows or repetitions < 1:
        raise UserError("overhead needs at least one row and one repetition")
    scorer = Scorer(artifacts_dir, version_check=version_check, threads=threads)
    records = list(rows)
    prebuilt = [scorer.feeds([scorer.values(record, i)]) for i, record in enumerate(records, 1)]
    run, outputs, n = scorer.session.run, scorer._outputs, len(records)
    for i in range(warmup):
        run(outputs, prebuilt[i % n])
        scorer.score_record(records[i % n])
    bare = np.empty(repetitions, dtype=np.float64)
    own = np.empty(repetitions, dtype=np.float64)
    clock, half = time.perf_counter_ns, n // 2
    for i in range(repetitions):
        feeds, record = prebuilt[i % n], records[(i + half) % n]
        if i % 2 == 0:
            start = clock()
            run(outputs, feeds)
            middle = clock()
            scorer.score_record(record)
            end = clock()
            bare[i], own[i] = middle - start, end - middle
        else:
            start = clock()
            scorer.score_record(record)
            middle = clock()
            run(outputs, feeds)
            end = clock()
            own[i], bare[i] = middle - start, end - middle
    bare_p50, own_p50 = float(np.median(bare)) / 1e3, float(np.median(own)) / 1e3
    ratio = own_p50 / bare_p50
    return {
        "batch_size": 1,
        "rows": n,
        "repetitions": repetitions,
        "threads": threads,
        "session_run_p50_us": round(bare_p50, 2),
        "scorer_p50_us": round(own_p50, 2),
        "ratio": round(ratio, 3),
        "overhead_pct": round(100 * (ratio - 1), 1),
        "goal_overhead_pct": round(100 * OVERHEAD_GOAL, 1),
        "meets_goal": ratio <= 1 + OVERHEAD_GOAL,
    }


# --- command line ------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m onnxship.scorer",
        description="Score raw records with model.onnx and its JSON contract (numpy + onnxruntime only).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--artifacts", default="artifacts", help="folder with model.onnx and the JSON files")
        sub.add_argument(
            "--version-check",
            choices=VERSION_CHECKS,
            default="strict",
            help="installed vs exporting onnxruntime: strict fails on a major difference and warns on a "
            "minor one; warn only warns; off skips the check (default: strict)",
        )
        sub.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default: 1)")

    score = commands.add_parser("score", help="score a CSV or JSON-lines file")
    common(score)
    score.add_argument("--input", required=True, help="records: .csv with a header, or .jsonl")
    score.add_argument("--output", required=True, help="scores: .csv or .jsonl (written atomically)")
    score.add_argument("--input-format", choices=["csv", "jsonl"], help="default: from the suffix")
    score.add_argument("--output-format", choices=["csv", "jsonl"], help="default: from the suffix")
    score.add_argument("--batch-size", type=int, default=1024, help="rows per session.run (default: 1024)")
    score.add_argument("--skip-invalid", action="store_true", help="leave invalid rows out and report them")
    score.add_argument("--summary", help="also write a JSON summary (counts, first invalid rows) here")
    score.add_argument("--progress", choices=["auto", "always", "never"], default="auto")

    check = commands.add_parser("check", help="verify the artifacts load and print what they expect")
    common(check)

    cost = commands.add_parser("overhead", help="the scorer's own cost at batch 1 vs a bare session.run")
    common(cost)
    cost.add_argument("--input", required=True, help="a CSV of raw rows (e.g. artifacts/test.csv)")
    cost.add_argument("--rows", type=int, default=200, help="rows taken from the input (default: 200)")
    cost.add_argument("--repetitions", type=int, default=2000)
    cost.add_argument("--warmup", type=int, default=200)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        if args.threads < 1:
            raise UserError(f"--threads must be at least 1, got {args.threads}")
        if args.command == "overhead":
            records = _first_csv_rows(Path(args.input), args.rows)
            report = overhead(
                args.artifacts, records, args.repetitions, args.warmup, args.threads, args.version_check
            )
            print(json.dumps(report, indent=2))
            return 0
        scorer = Scorer(args.artifacts, version_check=args.version_check, threads=args.threads)
        if args.command == "check":
            meta = scorer.metadata
            print(
                f"ok: {meta['family']} model, {len(scorer.inputs)} inputs, "
                f"positive '{meta['positive_label']}' if p >= {meta['threshold']!r}"
            )
            return 0
        summary = score_file(
            scorer,
            args.input,
            args.output,
            input_format=args.input_format,
            output_format=args.output_format,
            batch_size=args.batch_size,
            skip_invalid=args.skip_invalid,
            progress=args.progress,
            summary_path=args.summary,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"scored {summary['rows_scored']:,} rows ({summary['positives']:,} positive) -> {args.output}",
        file=sys.stderr,
    )
    if summary["rows_skipped"]:
        first = "; ".join(
            f"row {i['row']}" + (f" column '{i['column']}'" if i["column"] else "") + f": {i['reason']}"
            for i in summary["invalid"][:3]
        )
        print(f"skipped {summary['rows_skipped']:,} invalid rows (first: {first})", file=sys.stderr)
    return 0


def _first_csv_rows(path: Path, limit: int) -> list[dict]:
    """Up to ``limit`` raw rows of a CSV as dicts of strings."""
    if not path.is_file():
        raise UserError(f"input file {path} not found")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [row for _, row in zip(range(limit), reader, strict=False)]
    if not rows:
        raise UserError(f"{path} has no data rows")
    return rows


if __name__ == "__main__":
    sys.exit(main())

"""The Spark scorer's command line: ``python -m onnxship.serve.spark score ...``.

Its messages are the standalone scorer's: one ``error: ...`` line and exit code 2 for bad input or
artifacts (found before Spark starts where possible), the same summary lines and JSON on success.
Spark's own log goes to a file unless ``--spark-log -``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from onnxship.contract.runtime import VERSION_CHECKS
from onnxship.core.errors import UserError
from onnxship.serve.cli import OneLineParser
from onnxship.serve.passthrough import keep_list
from onnxship.serve.spark.driver import DEFAULT_BATCH_SIZE, ScoreOptions, input_format, load_artifacts, score
from onnxship.serve.spark.session import start_session
from onnxship.serve.summary import ScoreSummary, require_folder, same_file


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m onnxship.serve.spark",
        description="Score a CSV or Parquet input on Apache Spark with model.onnx and its JSON contract.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("score", help="score an input into a Parquet output")
    cmd.add_argument("--input", required=True, help=".parquet (file or folder) or .csv with a header")
    cmd.add_argument("--output", required=True, help="Parquet folder to write (replaced only if done)")
    cmd.add_argument("--artifacts", default="artifacts", help="folder with model.onnx and the JSON files")
    cmd.add_argument("--input-format", choices=["parquet", "csv"], help="default: from the suffix")
    cmd.add_argument("--master", help="Spark master (default: local[*], or spark-submit's)")
    cmd.add_argument("--remote", help="Spark Connect URL (sc://host:15002) instead of --master")
    cmd.add_argument("--id-column", help="a column naming each row: kept, and used in error messages")
    cmd.add_argument(
        "--keep",
        help="comma-separated columns to copy to the output (default: all "
        "input columns, or only --id-column if given)",
    )
    cmd.add_argument("--skip-invalid", action="store_true", help="leave invalid rows out and report them")
    cmd.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"rows per Arrow batch and session.run (default: {DEFAULT_BATCH_SIZE})",
    )
    cmd.add_argument("--version-check", choices=VERSION_CHECKS, default="strict")
    cmd.add_argument("--summary", help="also write a JSON summary (counts, first invalid rows) here")
    cmd.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting")
    cmd.add_argument(
        "--spark-log", help="where Spark's own log goes (default: a temporary file; - for stderr)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out, log = sys.stderr, None
    warnings.showwarning = lambda message, *_, **__: print(f"warning: {message}", file=out)
    try:
        conf = dict(_setting(item) for item in args.conf)
        options = score_options(args)
        # Before Spark starts: bad input names or artifacts cost no JVM and no task.
        input_format(args.input, args.input_format)
        if args.summary is not None:
            check_summary(Path(args.summary), args.input, args.output)
        artifacts, scorer = load_artifacts(args.artifacts, args.version_check)
        out, log = _quiet_spark(args.spark_log)
        spark = start_session(args.master, args.remote, conf)
        try:
            summary = score(spark, artifacts, scorer, args.input, args.output, options)
        finally:
            spark.stop()
        if args.summary is not None:
            summary.write(args.summary)
    except UserError as exc:
        print(f"error: {exc}", file=out)
        return 2
    except Exception as exc:  # Spark's own failure: its first line here, the rest in its log
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: Spark failed: {first[:300]} (Spark's log: {log or 'above'})", file=out)
        return 1
    _report(summary, log, out)
    return 0


def score_options(args: argparse.Namespace) -> ScoreOptions:
    """The job's options from the command line. ``--id-column`` and ``--keep`` follow the rules of
    every scorer (onnxship.serve.passthrough); without either, Spark keeps every input column."""
    return ScoreOptions(
        id_column=args.id_column,
        keep=list(keep_list(args.keep)) if args.keep else None,
        skip_invalid=args.skip_invalid,
        batch_size=args.batch_size,
        input_format=args.input_format,
    )


def _report(summary: ScoreSummary, log: str | None, out: IO[str]) -> None:
    for line in summary.lines():
        print(line, file=out)
    if log:
        print(f"spark log: {log}", file=out)


def check_summary(summary: Path, source: str, output: str) -> None:
    """The summary file may not overwrite the input or land in the output folder, nor be a folder."""
    if summary.is_dir():
        raise UserError(f"the summary {summary} is a folder: name a file to write")
    require_folder(summary)
    for what, path in (("input", source), ("output", output)):
        if "://" in path and not path.startswith("file://"):
            continue
        local = Path(path.removeprefix("file://"))
        if same_file(summary, local):
            raise UserError(f"the summary file is the {what}: write the summary to another file")
        if local.resolve() in summary.resolve().parents:
            raise UserError(f"the summary file is inside the {what} folder: write it elsewhere")


def _setting(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UserError(f"--conf {item!r} is not KEY=VALUE")
    return key, value


def _quiet_spark(log: str | None) -> tuple[IO[str], str | None]:
    """Send this process's stderr (and so the JVM's and the workers', which inherit it) to a log
    file, and return a handle on the real stderr for this command's own lines."""
    if log == "-":
        return sys.stderr, None
    if log is None:
        fd, log = tempfile.mkstemp(prefix="onnxship-spark-", suffix=".log")
    else:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stderr.flush()
    real = os.fdopen(os.dup(2), "w", buffering=1)
    os.dup2(fd, 2)
    os.close(fd)
    return real, log

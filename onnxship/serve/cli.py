"""The scorer's command line: ``python -m onnxship.serve score|check|overhead|http``."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import warnings
from collections.abc import Sequence

from onnxship.contract.runtime import VERSION_CHECKS
from onnxship.core.errors import UserError
from onnxship.serve.files import FileOptions, read_csv_records, score_file
from onnxship.serve.http import options as http_options
from onnxship.serve.overhead import overhead
from onnxship.serve.passthrough import Passthrough, keep_list
from onnxship.serve.scorer import Scorer


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage mistake reported as every other error is: one line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m onnxship.serve",
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
    score.add_argument(
        "--id-column", help="a field naming each row: copied to the output, and a row without it is invalid"
    )
    score.add_argument(
        "--keep", help="comma-separated fields to copy to the output as text (after --id-column, if given)"
    )
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

    http_options.add_parser(commands, common)
    return parser


def unexpected(exc: BaseException) -> str:
    """One line for a failure of the input or the system that no check named first."""
    if isinstance(exc, RecursionError):
        return "the input nests too deeply to be read"
    if isinstance(exc, MemoryError):
        return "the input does not fit in memory"
    if isinstance(exc, OSError):
        return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror or exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first[:300]}"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _serve_http(args: argparse.Namespace) -> int:
    options = http_options.from_args(args)
    try:  # the serve extra: imported only for this command
        from onnxship.serve.http.server import serve
    except ImportError as exc:
        raise UserError(
            f"the HTTP server needs the serve extra ({exc.name} is not installed): "
            "pip install --require-hashes -r requirements-serve.txt"
        ) from None
    return serve(options)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        if args.threads < 1:
            raise UserError(f"--threads must be at least 1, got {args.threads}")
        if args.command == "http":
            return _serve_http(args)
        if args.command == "overhead":
            records = read_csv_records(args.input, args.rows)
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
        options = FileOptions(
            input_format=args.input_format,
            output_format=args.output_format,
            batch_size=args.batch_size,
            skip_invalid=args.skip_invalid,
            progress=args.progress,
            summary_path=args.summary,
            passthrough=Passthrough(args.id_column, keep_list(args.keep)),
        )
        summary = score_file(scorer, args.input, args.output, options)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, UnicodeError, RecursionError, MemoryError, csv.Error, re.error) as exc:
        # The cases above have their own messages; this net keeps any other one to one line.
        print(f"error: {unexpected(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug of this client (or a contract no check caught): one line, exit 1
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        print(f"error: unexpected failure, please report it: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    for line in summary.lines():
        print(line, file=sys.stderr)
    return 0

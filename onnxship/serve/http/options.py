"""The HTTP server's options and their command line (standard library only, so that
``python -m onnxship.serve --help`` works without the serve extra installed)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from onnxship.core.errors import UserError

# The fields every prediction carries: a --keep field may not shadow one.
PREDICTION_FIELDS = ("probability", "decision", "label")


@dataclass(frozen=True)
class HttpOptions:
    """How to load the model and serve it (the ``http`` command's options of the same names)."""

    artifacts: str = "artifacts"
    version_check: str = "strict"
    threads: int = 1  # ONNX Runtime intra-op threads
    backend: str = "onnx"  # "onnx" (model.onnx) or "int8" (model.int8.onnx)
    host: str = "127.0.0.1"
    port: int = 8080  # 0: the system picks a free port (printed on stderr)
    max_body_bytes: int = 10 * 1024 * 1024
    batch_wait_ms: float = 2.0  # how long a batch waits for more records under concurrent load
    max_batch_rows: int = 1024  # records per session.run at most
    keep: tuple[str, ...] = ()  # fields echoed from each record into its prediction
    graceful_timeout_s: float = 30.0  # on SIGTERM, in-flight requests get this long to finish

    def check(self) -> HttpOptions:
        """Refuse values that cannot work, with one line (UserError)."""
        if self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}")
        if not 0 <= self.port <= 65535:
            raise UserError(f"--port must be from 0 to 65535, got {self.port}")
        if self.max_body_bytes < 1:
            raise UserError(f"--max-body-bytes must be at least 1, got {self.max_body_bytes}")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise UserError(f"--batch-wait-ms must be from 0 to 1000, got {self.batch_wait_ms}")
        if self.max_batch_rows < 1:
            raise UserError(f"--max-batch-rows must be at least 1, got {self.max_batch_rows}")
        shadowed = sorted(set(self.keep) & set(PREDICTION_FIELDS))
        if shadowed or "" in self.keep or len(set(self.keep)) != len(self.keep):
            raise UserError(
                f"--keep {','.join(self.keep)!r}: name each field once, not empty and not one of "
                f"{', '.join(PREDICTION_FIELDS)} (every prediction has those)"
            )
        return self


def add_parser(commands, common) -> None:
    """The ``http`` sub-command, on the scorer's parser (``common`` adds --artifacts and the like)."""
    default = HttpOptions()
    http = commands.add_parser("http", help="serve the model over HTTP (MLflow's scoring protocol)")
    common(http)
    http.add_argument(
        "--backend",
        choices=["onnx", "int8"],
        default="onnx",
        help="onnx: model.onnx; int8: model.int8.onnx, checked against quantize_report.json",
    )
    http.add_argument("--host", default=default.host, help=f"address to listen on (default: {default.host})")
    http.add_argument(
        "--port",
        type=int,
        default=default.port,
        help=f"port (default: {default.port}; 0 picks a free one, printed on stderr)",
    )
    http.add_argument(
        "--max-body-bytes",
        type=int,
        default=default.max_body_bytes,
        help="larger request bodies get 413 (default: 10 MiB)",
    )
    http.add_argument(
        "--batch-wait-ms",
        type=float,
        default=default.batch_wait_ms,
        help="under concurrent load, how long a batch waits for more records (default: 2)",
    )
    http.add_argument(
        "--max-batch-rows",
        type=int,
        default=default.max_batch_rows,
        help="records per session.run at most (default: 1024)",
    )
    http.add_argument(
        "--keep",
        default="",
        help="comma-separated fields echoed from each record into its prediction (an ID)",
    )


def from_args(args: argparse.Namespace) -> HttpOptions:
    keep = tuple(name.strip() for name in args.keep.split(",")) if args.keep else ()
    return HttpOptions(
        artifacts=args.artifacts,
        version_check=args.version_check,
        threads=args.threads,
        backend=args.backend,
        host=args.host,
        port=args.port,
        max_body_bytes=args.max_body_bytes,
        batch_wait_ms=args.batch_wait_ms,
        max_batch_rows=args.max_batch_rows,
        keep=keep,
    ).check()

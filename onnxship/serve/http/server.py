"""``python -m onnxship.serve http``: load and verify the artifacts, listen, serve until SIGTERM.

Everything that can be refused is refused before the server listens, with one ``error:`` line and
exit code 2: a bad artifacts folder (every check ``onnxship.contract.artifacts.load`` makes), an
INT8 file that is not the one quantize_report.json records, an address already in use. SIGTERM (or
Ctrl-C) stops accepting connections, lets the requests in flight finish (up to 30 s), answers 503 to
a new request on a kept-alive connection, and exits 0.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import signal
import socket
import sys
from pathlib import Path

import onnxruntime
import uvicorn

from onnxship.contract import artifacts
from onnxship.contract.cpu import warn_int8_family
from onnxship.core.errors import UserError
from onnxship.core.paths import INT8_FILE, METADATA_FILE, Artifacts
from onnxship.serve.http.app import AccessLog, Served, application
from onnxship.serve.http.batcher import Batcher, BatchPolicy
from onnxship.serve.http.options import HttpOptions
from onnxship.serve.http.protocol import dumps
from onnxship.serve.scorer import Scorer

DYNAMIC_INT8 = (
    "dynamic INT8 computes activation ranges over each session.run's whole batch, so a record's score "
    "would depend on the other requests batched with it: each request runs on its own"
)
MANY_THREADS = (
    "with more than one intra-op thread ONNX Runtime splits a tree ensemble's work by batch size, so "
    "a row's float32 sum may differ in the last bit between batches (measured: 1.8e-7): each request "
    "runs on its own; --threads 1 batches across requests"
)


def _int8_report(folder: Path) -> dict:
    """quantize_report.json, which records the INT8 file's sha256 (the metadata describes model.onnx)."""
    path = Artifacts(folder).quantize_report
    if not path.is_file():
        raise UserError(f"{path} not found: the INT8 model is checked against the sha256 it records")
    try:
        report = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); re-run the quantize stage (dvc repro)") from None
    if not isinstance(report, dict) or not isinstance(report.get("int8_sha256"), str):
        raise UserError(f"{path} records no int8_sha256; re-run the quantize stage (dvc repro)")
    return report


def load(options: HttpOptions) -> tuple[Scorer, dict]:
    """The scorer for ``--backend`` and /health's fixed part; refuses what any client refuses."""
    folder = Path(options.artifacts)
    report = _int8_report(folder) if options.backend == "int8" else None
    contract = artifacts.load(folder, options.version_check, INT8_FILE if report else None)
    model_sha = hashlib.sha256(contract.model).hexdigest()  # the very bytes the session loads
    if report and model_sha != report["int8_sha256"]:
        raise UserError(
            f"{folder / INT8_FILE} has sha256 {model_sha[:12]}..., but quantize_report.json records "
            f"{report['int8_sha256'][:12]}...: copy model.int8.onnx and its report from the same run"
        )
    scorer = Scorer.from_contract(contract, options.threads)
    metadata = contract.metadata
    if report:
        warn_int8_family(metadata.get("kernel_family"))
    dynamic = bool(report) and report.get("mode") == "dynamic" and report.get("nodes_quantized") != 0
    why_not = DYNAMIC_INT8 if dynamic else MANY_THREADS if options.threads > 1 else None
    health = {
        "status": "ok",
        "backend": options.backend,
        "model_file": INT8_FILE if report else metadata["model_file"],
        "sha256": {
            "model": model_sha,
            "onnx_features.json": metadata["features_sha256"],  # checked against the file by load
            "onnx_metadata.json": hashlib.sha256((folder / METADATA_FILE).read_bytes()).hexdigest(),
        },
        "onnxruntime": onnxruntime.__version__,
        # uvicorn parses HTTP with httptools when it is installed (the serve extra), else with h11
        "http_parser": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "threads": options.threads,
        "batching": {
            "across_requests": why_not is None,
            "wait_ms": options.batch_wait_ms,
            "max_rows": options.max_batch_rows,
            **({"why_not": why_not} if why_not else {}),
        },
    }
    return scorer, health


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so that an address in use is one line and exit code 2."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        # The protocol number too (IPPROTO_TCP): asyncio sets TCP_NODELAY only on sockets that carry
        # it, and without it every kept-alive answer waited ~40 ms (Nagle against delayed ACKs).
        sock = socket.socket(info[0], info[1], info[2])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(info[4])
        sock.listen(2048)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise UserError(f"cannot listen on {host}:{port} ({why}): choose another --port") from None
    return sock


def serve(options: HttpOptions) -> int:
    scorer, health = load(options)
    metadata = dumps({"onnx_features.json": scorer.features, "onnx_metadata.json": scorer.metadata})
    policy = BatchPolicy(
        wait_s=options.batch_wait_ms / 1000,
        max_rows=options.max_batch_rows,
        across_requests=health["batching"]["across_requests"],
    )
    served = Served(scorer, Batcher(scorer, policy), options.max_body_bytes, options.keep, health, metadata)
    sock = listen(options.host, options.port)
    config = uvicorn.Config(
        AccessLog(application(served)),
        lifespan="on",
        access_log=False,  # ours, with the record count: AccessLog
        log_level="warning",
        timeout_graceful_shutdown=options.graceful_timeout_s,
        server_header=False,
    )
    server = uvicorn.Server(config)
    served.stopping = lambda: server.should_exit
    host, port = sock.getsockname()[:2]
    batching = "across requests" if policy.across_requests else "per request (see /health)"
    print(
        f"serving {health['model_file']} ({health['backend']}, sha256 {health['sha256']['model'][:12]}...) "
        f"on http://{host}:{port} (batching {batching}, up to {policy.max_rows} rows, wait "
        f"{options.batch_wait_ms:g} ms; {health['http_parser']}); SIGTERM stops it",
        file=sys.stderr,
        flush=True,
    )
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with these
    # handlers in place that re-raise is a no-op, so a graceful stop exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run(sockets=[sock])
    if not server.started:  # the application failed to start (uvicorn logged why)
        return 1
    print("stopped", file=sys.stderr, flush=True)
    return 0

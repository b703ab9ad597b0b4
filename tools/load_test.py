"""Bounded loopback load on an MLflow-protocol scoring server, every answer checked against the CLI scorer.

    python -m tools.load_test --command "python -m onnxship.serve http --artifacts artifacts \\
        --host 127.0.0.1 --port {port}" [--connections 1,8,16,32] [--batch 1,64] [--requests 2000] \\
        [--max-seconds 15] [--malformed-share 0.05] [--json report.json] [--markdown]
    python -m tools.load_test --url http://127.0.0.1:5000 ...      # a server already running

For each cell (connections x records per request) it sends at most ``--requests`` requests within at most
``--max-seconds`` (whichever ends first) over that many keep-alive connections (aiohttp), after a short
untimed warm-up, and reports requests/s, records/s, p50/p95/p99 latency (nearest rank), errors (no
answer, a good request not answered 200, a malformed one without its 4xx: tools/load_check.py) and
wrong answers (200, but predictions that differ from ``python -m onnxship.serve score`` on the same
records: probability to 1e-6, decision and label equal). Answers are checked after each cell's timed
window. It also reports the client's own CPU time per request, so a reader can tell whether the load
generator, which shares the machine's cores with the server, was the bottleneck.

Only 127.0.0.1 or localhost: anything else is refused. ``--command`` starts the server on a free port
(``{port}``), waits for ``GET /ping`` to answer 200, and stops it with SIGTERM at the end, reporting its
exit code (0 expected). Exit code: 0 when every cell had no error, 1 otherwise, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from onnxship.core.errors import UserError
from tools.load_check import Expected, ProbaAnswers, Traffic, expected_scores, percentile, typed_records

LOOPBACK = {"127.0.0.1", "localhost"}
JSON_HEADERS = {"Content-Type": "application/json"}
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Load:
    """What one cell sends."""

    connections: int
    batch: int
    requests: int
    max_seconds: float
    malformed_share: float = 0.0
    payload: str = "records"
    seed: int = 0


@dataclass
class Tally:
    """What one cell saw."""

    latencies: list[float] = field(default_factory=list)
    sent: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    errors: int = 0  # no answer, or a wrong status
    wrong_answers: int = 0  # 200, but predictions that differ from the CLI scorer's
    first_errors: list[str] = field(default_factory=list)

    def error(self, message: str, wrong_answer: bool = False) -> None:
        self.wrong_answers += wrong_answer
        self.errors += not wrong_answer
        if len(self.first_errors) < 5:
            self.first_errors.append(message)


def loopback_url(url: str) -> str:
    """``url`` without a trailing slash, if it is http on 127.0.0.1 or localhost; UserError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK or not parts.port:
        raise UserError(f"--url must be http://127.0.0.1:PORT or http://localhost:PORT, got {url!r}")
    return url.rstrip("/")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base: str, process: subprocess.Popen | None, timeout: float) -> None:
    """Until ``GET /ping`` answers 200 (the server loaded its artifacts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise UserError(f"the server exited with code {process.returncode} before answering /ping")
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise UserError(f"{base}/ping did not answer 200 within {timeout:.0f} s")


async def _one(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, bytes, float]:
    start = time.perf_counter()
    async with session.post(url, data=body, headers=JSON_HEADERS) as answer:
        payload = await answer.read()
    return answer.status, payload, time.perf_counter() - start


async def run_cell(base: str, load: Load, traffic: Traffic, expected: list[Expected]) -> dict:
    """One cell: ``load.connections`` workers share a request counter until ``load.requests`` were sent
    or ``load.max_seconds`` passed. Answers are judged after the timed window, so checking them does
    not take the cores from the server while it is measured."""
    url, tally, answers = f"{base}/invocations", Tally(), []
    requests = [traffic.request(i, load.seed) for i in range(load.requests)]
    connector = aiohttp.TCPConnector(limit=load.connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    # No cookie jar and one headers object: less client CPU per request (it shares the server's cores).
    jar = aiohttp.DummyCookieJar()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, cookie_jar=jar) as session:
        warm = [traffic.request(i, load.seed) for i in range(load.connections)]  # untimed, unchecked
        await asyncio.gather(
            *(_one(session, url, r.body) for r in warm if r.kind == "good"), return_exceptions=True
        )
        counter = iter(range(load.requests))
        cpu, start = time.process_time(), time.perf_counter()
        deadline = start + load.max_seconds

        async def worker() -> None:
            for i in counter:
                if time.perf_counter() >= deadline:
                    return
                request = requests[i]
                tally.sent += 1
                tally.by_kind[request.kind] = tally.by_kind.get(request.kind, 0) + 1
                try:
                    status, body, seconds = await _one(session, url, request.body)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    tally.error(f"request {i} ({request.kind}): {type(exc).__name__}: {exc}")
                    continue
                tally.latencies.append(seconds)
                answers.append((i, status, body))

        await asyncio.gather(*(worker() for _ in range(load.connections)))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    for i, status, body in answers:
        wrong = traffic.judge(requests[i], status, body, expected)
        if wrong:
            tally.error(f"request {i}: {wrong}", wrong_answer=status == 200 and requests[i].kind == "good")
    return summarize(load, tally, wall, cpu)


def summarize(load: Load, tally: Tally, wall: float, cpu: float) -> dict:
    """A cell's figures (latencies in ms)."""
    ms = [s * 1000 for s in tally.latencies]
    good = tally.by_kind.get("good", 0)
    return {
        "connections": load.connections,
        "records_per_request": load.batch,
        "requests": tally.sent,
        "by_kind": dict(sorted(tally.by_kind.items())),
        "seconds": round(wall, 3),
        "requests_per_s": round(tally.sent / wall, 1) if wall else 0.0,
        "records_per_s": round(good * load.batch / wall, 1) if wall else 0.0,
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "errors": tally.errors,
        "wrong_answers": tally.wrong_answers,
        "first_errors": tally.first_errors,
        "client_cpu_ms_per_request": round(cpu * 1000 / tally.sent, 4) if tally.sent else None,
        "client_cpu_share_of_a_core": round(cpu / wall, 3) if wall else None,
    }


def markdown(report: dict) -> str:
    """The cells as a markdown table."""
    lines = [
        "| connections | records/request | requests | requests/s | records/s | p50 ms | p95 ms | p99 ms "
        "| errors | wrong answers | client CPU ms/request |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in report["cells"]:
        lines.append(
            f"| {c['connections']} | {c['records_per_request']} | {c['requests']:,} "
            f"| {c['requests_per_s']:,.0f} | {c['records_per_s']:,.0f} "
            f"| {c['p50_ms']:.2f} | {c['p95_ms']:.2f} | {c['p99_ms']:.2f} "
            f"| {c['errors']} | {c['wrong_answers']} | {c['client_cpu_ms_per_request']} |"
        )
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.load_test", description=__doc__.split("\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running server: http://127.0.0.1:PORT (loopback only)")
    target.add_argument("--command", help="start the server with this command; {port} is replaced")
    parser.add_argument("--artifacts", default="artifacts", help="the CLI scorer's artifacts (the reference)")
    parser.add_argument("--records", help="CSV of records to send (default: ARTIFACTS/test.csv)")
    parser.add_argument("--connections", type=_ints, default=[1, 8, 16, 32])
    parser.add_argument("--batch", type=_ints, default=[1, 64], help="records per request")
    parser.add_argument("--requests", type=int, default=2000, help="at most this many requests per cell")
    parser.add_argument("--max-seconds", type=float, default=15.0, help="at most this long per cell")
    parser.add_argument("--malformed-share", type=float, default=0.0, help="share of malformed requests")
    parser.add_argument(
        "--payload",
        choices=["records", "split", "mixed"],
        default="records",
        help="dataframe_records, dataframe_split, or both in turn",
    )
    parser.add_argument(
        "--answers",
        choices=["records", "proba"],
        default="records",
        help="records: ours, {probability, decision, label} per record; proba: class "
        "probabilities per record (MLflow's sklearn flavor, tools/mlflow_baseline.py)",
    )
    parser.add_argument("--start-timeout", type=float, default=120.0, help="seconds to wait for /ping")
    parser.add_argument("--json", help="also write the report here")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table too")
    return parser


def start_server(command: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = shlex.split(command.replace("{port}", str(port)))
    with open(log, "wb") as handle:  # the server's own output (an access log line per request)
        # Its own process group, so SIGTERM reaches the workers a launcher starts (mlflow runs uvicorn).
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


def stop_server(process: subprocess.Popen) -> int | None:
    """SIGTERM to the server's process group, then its exit code (None if it had to be killed after 20 s)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return None
    return process.returncode


def run(args: argparse.Namespace, base: str) -> dict:
    """Every cell against ``base``, in order, with the machine's load average (1, 5, 15 min) before and
    after: the figures depend on what else the cores run."""
    load_before = [round(v, 2) for v in os.getloadavg()]
    features = json.loads((Path(args.artifacts) / "onnx_features.json").read_text(encoding="utf-8"))
    records = typed_records(args.records or Path(args.artifacts) / "test.csv", features)
    expected = expected_scores(records, args.artifacts)
    proba = None
    if args.answers == "proba":
        meta = json.loads((Path(args.artifacts) / "onnx_metadata.json").read_text(encoding="utf-8"))
        proba = ProbaAnswers(
            int(meta["positive_class_index"]),
            float(meta["threshold"]),
            meta["positive_label"],
            meta["negative_label"],
        )
    cells = []
    for batch in args.batch:
        traffic = Traffic(records, batch, args.malformed_share, args.payload, proba)
        for connections in args.connections:
            load = Load(
                connections, batch, args.requests, args.max_seconds, args.malformed_share, args.payload
            )
            cell = asyncio.run(run_cell(base, load, traffic, expected))
            print(
                f"{connections:>3} connections x {batch:>3} records: {cell['requests_per_s']:>8,.0f} req/s, "
                f"p99 {cell['p99_ms']:.2f} ms, "
                f"{cell['errors']} errors, {cell['wrong_answers']} wrong answers",
                file=sys.stderr,
            )
            cells.append(cell)
    return {
        "url": base,
        "command": args.command,
        "records": len(records),
        "malformed_share": args.malformed_share,
        "payload": args.payload,
        "answers": args.answers,
        "load_average_before": load_before,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
        "cells": cells,
    }


def main(argv: list[str] | None = None) -> int:
    """Exit code: 0 if every answer was right, 1 if not, 2 for an error (one ``error:`` line)."""
    args = _parser().parse_args(argv)
    try:
        return _load(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _load(args: argparse.Namespace) -> int:
    if args.requests < 1 or args.max_seconds <= 0 or not 0 <= args.malformed_share < 1:
        raise UserError("--requests and --max-seconds must be positive, --malformed-share in [0, 1)")
    process = None
    with tempfile.TemporaryDirectory(prefix="load_test_") as folder:
        if args.command:
            process, base = start_server(args.command, Path(folder) / "server.log")
        else:
            base = loopback_url(args.url)
        try:
            wait_ready(base, process, args.start_timeout)
            report = run(args, base)
        except UserError:
            if process:
                print((Path(folder) / "server.log").read_text(errors="replace")[-2000:], file=sys.stderr)
            raise
        finally:
            code = stop_server(process) if process else None
        if process:
            report["server_exit_code"] = code
            if code != 0:
                report["server_log_tail"] = (Path(folder) / "server.log").read_text(errors="replace")[-2000:]
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)
    if args.markdown:
        print(markdown(report))
    failed = sum(c["errors"] + c["wrong_answers"] for c in report["cells"]) or (
        process and report["server_exit_code"] != 0
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

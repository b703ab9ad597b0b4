"""The HTTP server as a user runs it: ``python -m onnxship.serve http`` in a real process on 127.0.0.1,
real requests, no mocks. Its answers equal the CLI scorer's on the same records, in both MLflow
formats and with values as text, numbers or null; bad requests get their status and the server goes
on; concurrent requests share batches and get the very answers single requests get; SIGTERM lets the
request in flight finish and exits 0."""

from __future__ import annotations

import csv
import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from onnxship.serve.scorer import Scorer
from tests.conftest import REPO

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError:
    pytest.skip(
        "the HTTP server needs the serve extra: pip install --require-hashes -r requirements-serve.txt",
        allow_module_level=True,
    )

NUMERIC = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


class Server:
    """``python -m onnxship.serve http`` on a free port, its stderr in a file."""

    def __init__(self, artifacts: Path, log: Path, *extra: str) -> None:
        self.log = log
        args = ["http", "--artifacts", str(artifacts), "--host", "127.0.0.1", "--port", "0", *extra]
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "onnxship.serve", *args], cwd=REPO, stderr=err
            )
        deadline = time.monotonic() + 20
        while not (match := re.search(r"on http://127\.0\.0\.1:(\d+)", log.read_text())):
            assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        self.port = int(match[1])
        while (
            self.request("GET", "/ping")[0] != 200
        ):  # listening from the start; answering once the loop runs
            time.sleep(0.05)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, parsed JSON body or None); a connection error is status 0."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(
                method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})}
            )
            response = conn.getresponse()
            data = response.read()
        except (ConnectionRefusedError, ConnectionResetError):
            return 0, None
        finally:
            conn.close()
        return response.status, json.loads(data) if data else None

    def score(self, payload: dict) -> tuple[int, dict]:
        return self.request("POST", "/invocations", json.dumps(payload).encode())

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


def test_rows(artifacts: Path) -> list[dict]:
    with open(artifacts / "test.csv", newline="") as handle:
        return list(csv.DictReader(handle))


test_rows.__test__ = False  # a helper, not a test


def cli_scores(artifacts: Path, records: list[dict], tmp: Path) -> list[tuple[float, int, str]]:
    """The CLI scorer's (probability, decision, label) per record, from a JSON-lines file."""
    source, out = tmp / "records.jsonl", tmp / "scores.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    args = ["score", "--artifacts", str(artifacts), "--input", str(source), "--output", str(out)]
    done = subprocess.run([sys.executable, "-m", "onnxship.serve", *args], cwd=REPO, capture_output=True)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    return [(s["probability"], int(s["decision"]), s["label"]) for s in lines]


def answers(predictions: list[dict]) -> list[tuple[float, int, str]]:
    return [(p["probability"], p["decision"], p["label"]) for p in predictions]


@pytest.fixture(scope="module")
def server(staged, tmp_path_factory):
    log = tmp_path_factory.mktemp("http") / "stderr.log"
    running = Server(staged.served, log, "--keep", "churn", "--max-body-bytes", "2000000")
    yield running
    assert running.stop() == 0, log.read_text()


@pytest.fixture(scope="module")
def expected(staged, tmp_path_factory) -> list[tuple[float, int, str]]:
    return cli_scores(staged.served, test_rows(staged.served), tmp_path_factory.mktemp("cli"))


# --- same answers as the CLI scorer ------------------------------------------------------------------


def test_records_and_split_answer_as_the_cli_scorer(server, staged, expected):
    rows = test_rows(staged.served)
    status, body = server.score({"dataframe_records": rows})
    assert status == 200
    assert answers(body["predictions"]) == expected  # == on floats: the same bits
    assert [p["churn"] for p in body["predictions"]] == [r["churn"] for r in rows]  # --keep churn
    columns = list(rows[0])
    split = {
        "columns": columns,
        "data": [[r[c] for c in columns] for r in rows],
        "index": list(range(len(rows))),
    }
    status, body = server.score({"dataframe_split": split})
    assert status == 200 and answers(body["predictions"]) == expected
    assert server.score({"dataframe_records": []}) == (200, {"predictions": []})


def test_numbers_and_nulls_are_read_as_the_cli_reads_a_json_line(server, staged, tmp_path):
    rows = test_rows(staged.served)[:200]
    typed = [{k: (json.loads(v) if NUMERIC.match(v) else v) for k, v in r.items()} for r in rows]
    for i, record in enumerate(typed[::7]):  # missing values: null, "" and a token, in numeric fields
        record["total_day_minutes"] = [None, "", "NA"][i % 3]
        record["state"] = None if i % 2 else ""
    status, body = server.score({"dataframe_records": typed})
    assert status == 200 and answers(body["predictions"]) == cli_scores(staged.served, typed, tmp_path)


# --- bad requests: their status, a JSON error, and the server goes on ------------------------------------


def test_bad_requests_get_their_status_and_the_server_goes_on(server, staged, expected):
    good = test_rows(staged.served)[0]
    bad_number = {**good, "total_day_minutes": "12,5"}
    cases = [
        (b"{not json", 400, "not valid JSON"),
        (b'{"dataframe_records": [{"a": NaN}]}', 400, "NaN is not JSON"),
        (b'{"dataframe_records": [], "dataframe_records": []}', 400, "duplicate key"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"instances": [[1]]}', 400, "exactly one key"),
        (b'{"dataframe_records": {"a": 1}}', 400, "list of records"),
        (b'{"dataframe_split": {"columns": ["a", "a"], "data": []}}', 400, "more than once"),
        (b'{"dataframe_split": {"columns": ["a"], "data": [[1]], "index": [0, 1]}}', 400, "index"),
        (b"\xff\xfe", 400, "UTF-8"),
        (b'{"dataframe_records": [{"state": "\\ud800"}]}', 400, "a lone surrogate \\ud800 is not text"),
    ]
    for body, status, text in cases:
        got, answer = server.request("POST", "/invocations", body)
        assert (got, answer["error_code"]) == (status, "BAD_REQUEST") and text in answer["message"], body
    got, answer = server.score({"dataframe_records": [good, good, bad_number]})
    assert got == 422 and (answer["index"], answer["field"]) == (2, "total_day_minutes")
    assert answer["message"].startswith("record 2, field 'total_day_minutes': '12,5' is not a number")
    got, answer = server.score({"dataframe_records": [good, {k: v for k, v in good.items() if k != "state"}]})
    assert (
        got == 422 and (answer["index"], answer["field"]) == (1, "state") and "missing" in answer["message"]
    )
    got, answer = server.score({"dataframe_split": {"columns": ["state"], "data": [["KS"]]}})
    assert got == 422 and answer["index"] == 0  # the first field the contract needs and the row lacks
    got, answer = server.score({"dataframe_records": [good, [1, 2]]})
    assert got == 422 and answer["index"] == 1 and "expected an object" in answer["message"]
    assert server.score({"dataframe_records": [{k: v for k, v in good.items() if k != "churn"}]})[0] == 422
    assert server.request("POST", "/invocations", b"{}", {"Content-Type": "text/csv"})[0] == 415
    assert server.request("GET", "/invocations")[0] == 405
    assert server.request("POST", "/ping", b"{}")[0] == 405
    got, answer = server.request("GET", "/nowhere")
    assert got == 404 and answer["error_code"] == "ENDPOINT_NOT_FOUND"
    # After all that, the server still answers, and right.
    assert server.request("GET", "/ping")[0] == 200
    status, body = server.score({"dataframe_records": [good]})
    assert status == 200 and answers(body["predictions"]) == expected[:1]


def test_a_body_over_the_limit_gets_413_declared_or_chunked(server, staged):
    big = json.dumps({"dataframe_records": test_rows(staged.served) * 6}).encode()  # > 2,000,000 bytes
    assert len(big) > 2_000_000
    status, answer = server.request("POST", "/invocations", big)
    assert status == 413 and answer["error_code"] == "REQUEST_TOO_LARGE"
    # Chunked (no Content-Length): refused while reading, once the bytes pass the limit.
    chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/invocations", body=chunks, headers={"Content-Type": "application/json"},
                 encode_chunked=True)  # fmt: skip
    assert conn.getresponse().status == 413
    conn.close()
    assert server.request("GET", "/ping")[0] == 200


def test_health_and_metadata(server, staged):
    status, health = server.request("GET", "/health")
    model = staged.served / "model.onnx"
    import hashlib

    assert status == 200 and health["status"] == "ok" and health["backend"] == "onnx"
    assert health["sha256"]["model"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert health["batching"]["across_requests"] is True
    status, contract = server.request("GET", "/metadata")
    assert contract["onnx_metadata.json"] == json.loads((staged.served / "onnx_metadata.json").read_text())
    assert contract["onnx_features.json"] == json.loads((staged.served / "onnx_features.json").read_text())


def test_access_log_has_one_line_per_request(server):
    server.request("GET", "/nowhere")
    time.sleep(0.1)
    lines = server.log.read_text().splitlines()
    assert re.fullmatch(r"GET /nowhere 404 - \d+\.\d\dms", lines[-1])
    assert any(re.fullmatch(r"POST /invocations 200 1000 \d+\.\d\dms", line) for line in lines)


# --- batching: shared session.run, same bits ----------------------------------------------------------


def test_one_row_scores_the_same_alone_and_in_any_batch(staged):
    """What makes batching across requests safe: each row's float32 result does not depend on the
    rows run with it (one intra-op thread)."""
    scorer = Scorer(staged.served)
    rows = [scorer.values(r, i) for i, r in enumerate(test_rows(staged.served), 1)]
    whole = scorer.probabilities(scorer.feeds(rows))
    alone = np.array([scorer.probabilities(scorer.feeds([row]))[0] for row in rows])
    shuffled = np.random.default_rng(0).permutation(len(rows))
    mixed = scorer.probabilities(scorer.feeds([rows[i] for i in shuffled]))
    assert whole.tolist() == alone.tolist() == mixed[np.argsort(shuffled)].tolist()


def test_concurrent_requests_share_batches_and_get_single_answers(server, staged, expected):
    rows = test_rows(staged.served)[:400]
    before = server.request("GET", "/health")[1]["batches"]

    def one(i: int):
        status, body = server.score({"dataframe_records": [rows[i]]})
        assert status == 200
        return answers(body["predictions"])[0]

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(one, range(len(rows))))
    assert got == expected[: len(rows)]
    after = server.request("GET", "/health")[1]["batches"]
    requests, batches = after["requests"] - before["requests"], after["batches"] - before["batches"]
    assert requests == len(rows) and batches < requests  # some session.run served several requests


# --- start-up refusals and SIGTERM -----------------------------------------------------------------------


def test_a_bad_artifacts_folder_is_one_line_and_exit_2_before_listening(served):
    (served / "onnx_metadata.json").write_text(
        (served / "onnx_metadata.json").read_text().replace("0", "1", 1)
    )
    args = ["http", "--artifacts", str(served), "--port", "0"]
    for extra in ([], ["--backend", "int8"]):
        command = [sys.executable, "-m", "onnxship.serve", *args, *extra]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    done = subprocess.run([sys.executable, "-m", "onnxship.serve", *args, "--keep", "probability"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "--keep" in done.stderr


def test_int8_backend_and_no_batching_across_requests_for_dynamic_int8_or_threads(staged, tmp_path):
    from onnxship.serve.http.options import HttpOptions
    from onnxship.serve.http.server import load

    folder = Path(shutil.copytree(staged.root / "artifacts", tmp_path / "artifacts"))
    report = json.loads((folder / "quantize_report.json").read_text())
    _, health = load(HttpOptions(artifacts=str(folder), backend="int8"))
    assert health["model_file"] == "model.int8.onnx" and health["sha256"]["model"] == report["int8_sha256"]
    dynamic = report["mode"] == "dynamic" and report["nodes_quantized"] > 0
    assert health["batching"]["across_requests"] is not dynamic
    (folder / "quantize_report.json").write_text(
        json.dumps({**report, "mode": "dynamic", "nodes_quantized": 2})
    )
    _, health = load(HttpOptions(artifacts=str(folder), backend="int8"))
    assert (
        health["batching"]["across_requests"] is False
        and "activation ranges" in health["batching"]["why_not"]
    )
    _, health = load(HttpOptions(artifacts=str(folder), threads=2))  # trees split by batch size
    assert health["batching"]["across_requests"] is False and "--threads 1" in health["batching"]["why_not"]


def test_int8_served_on_another_kernel_family_warns_once_on_stderr(staged, tmp_path, capsys):
    """onnx_metadata.json records the u8s8 kernel family the artifacts were verified on; INT8 served
    on a CPU of the other family says so once (FP32 never: no integer kernels)."""
    from onnxship.contract import cpu
    from onnxship.serve.http.options import HttpOptions
    from onnxship.serve.http.server import load

    folder = Path(shutil.copytree(staged.root / "artifacts", tmp_path / "artifacts"))
    metadata = json.loads((folder / "onnx_metadata.json").read_text())
    assert metadata["kernel_family"] == cpu.family()  # built here
    load(HttpOptions(artifacts=str(folder), backend="int8"))
    assert "kernel_family" not in capsys.readouterr().err
    other = cpu.EXACT if cpu.family() != cpu.EXACT else cpu.SATURATING
    (folder / "onnx_metadata.json").write_text(json.dumps({**metadata, "kernel_family": other}))
    load(HttpOptions(artifacts=str(folder)))  # FP32
    assert capsys.readouterr().err == ""
    for _ in range(2):
        load(HttpOptions(artifacts=str(folder), backend="int8"))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"warning: model.int8.onnx was verified on a CPU with {other}"
    )
    Scorer(folder, model_file="model.int8.onnx")  # the library's INT8 path: the same warning, already given
    assert capsys.readouterr().err == ""


def test_sigterm_lets_the_request_in_flight_finish_refuses_new_ones_and_exits_0(staged, tmp_path, expected):
    server = Server(staged.served, tmp_path / "stderr.log")
    body = json.dumps({"dataframe_records": test_rows(staged.served)[:50]}).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    head = "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body[:100])  # the request is in flight: half its body sent
    while server.request("GET", "/health")[1]["in_flight"] != 1:  # until the server reads it
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert server.request("GET", "/ping")[0] == 0  # no new connection is accepted
    assert server.proc.poll() is None  # still finishing the request in flight
    sock.sendall(body[100:])
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.status == 200
    assert answers(json.loads(response.read())["predictions"]) == expected[:50]
    sock.close()
    assert server.proc.wait(timeout=20) == 0
    assert server.log.read_text().splitlines()[-1] == "stopped"

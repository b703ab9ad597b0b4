"""The load benchmark (tools/load_test.py): it counts what it sends, computes percentiles by nearest
rank, sends nothing off the loopback, and tells right answers from wrong ones, run against a real
MLflow-protocol server (tools/stub_server.py over the Scorer) on the staged artifacts. No timing is
asserted: the figures come from the tool, not from tests."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from contextlib import contextmanager

import pytest
from aiohttp import web

from onnxship.serve.scorer import Scorer
from tools import load_test
from tools.load_check import MALFORMED, Expected, ProbaAnswers, Request, Traffic, percentile, typed_records
from tools.stub_server import make_app

# --- percentiles, worked by hand ----------------------------------------------------------------


def test_percentile_is_the_nearest_rank():
    latencies = [35, 15, 50, 40, 20]  # sorted: 15 20 35 40 50
    assert percentile(latencies, 50) == 35  # ceil(0.50 * 5) = 3rd
    assert percentile(latencies, 40) == 20  # ceil(0.40 * 5) = 2nd
    assert percentile(latencies, 95) == 50  # ceil(4.75) = 5th
    assert percentile(latencies, 0) == 15  # rank at least 1
    hundred = list(range(1, 101))
    assert [percentile(hundred, q) for q in (50, 95, 99, 100)] == [50, 95, 99, 100]
    assert percentile([7.5], 99) == 7.5
    assert math.isnan(percentile([], 50))


# --- loopback only ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8080",
        "http://example.com:80",
        "https://127.0.0.1:8443",
        "http://127.0.0.1",
        "http://127.0.0.2:80@10.0.0.1:80",
        "http://0.0.0.0:8080",
    ],
)
def test_a_url_off_the_loopback_is_refused_before_anything_is_sent(url, capsys):
    assert load_test.main(["--url", url, "--requests", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --url must be http://127.0.0.1:PORT") and err.count("\n") == 1


def test_a_loopback_url_is_accepted():
    assert load_test.loopback_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert load_test.loopback_url("http://localhost:5000") == "http://localhost:5000"


# --- judging answers, on hand-made records ----------------------------------------------------------

RECORDS = [{"x": float(i), "state": "KS"} for i in range(4)]
EXPECTED = [Expected(0.1 * i, int(i >= 2), "yes" if i >= 2 else "no") for i in range(4)]


def answer(rows, shift=0.0):
    return json.dumps(
        {
            "predictions": [
                {
                    "probability": EXPECTED[r].probability + shift,
                    "decision": EXPECTED[r].decision,
                    "label": EXPECTED[r].label,
                }
                for r in rows
            ]
        }
    ).encode()


def test_good_requests_take_consecutive_records_and_wrap():
    traffic = Traffic(RECORDS, batch=3)
    assert traffic.request(0).rows == (0, 1, 2)
    second = traffic.request(1)
    assert second.rows == (3, 0, 1) and second.kind == "good"
    assert json.loads(second.body) == {"dataframe_records": [RECORDS[3], RECORDS[0], RECORDS[1]]}
    split = json.loads(Traffic(RECORDS, batch=2, payload="split").request(0).body)
    assert split == {"dataframe_split": {"columns": ["x", "state"], "data": [[0.0, "KS"], [1.0, "KS"]]}}


def test_a_right_answer_passes_and_a_wrong_one_is_named():
    traffic, request = Traffic(RECORDS, batch=2), Traffic(RECORDS, batch=2).request(1)  # records 2, 3
    assert traffic.judge(request, 200, answer([2, 3]), EXPECTED) is None
    assert traffic.judge(request, 200, answer([2, 3], shift=9e-7), EXPECTED) is None  # within 1e-6
    assert "probability" in traffic.judge(request, 200, answer([2, 3], shift=2e-6), EXPECTED)
    flipped = answer([2, 3]).replace(b'"decision": 1, "label": "yes"}]', b'"decision": 0, "label": "yes"}]')
    assert "record 3: decision 0" in traffic.judge(request, 200, flipped, EXPECTED)
    relabelled = answer([2, 3]).replace(b'"yes"}]', b'"no"}]')
    assert "record 3: label 'no'" in traffic.judge(request, 200, relabelled, EXPECTED)
    assert "1 predictions for 2" in traffic.judge(request, 200, answer([2]), EXPECTED)
    assert "status 500" in traffic.judge(request, 500, b"{}", EXPECTED)


def test_class_probabilities_are_read_with_the_contracts_rule():
    traffic = Traffic(RECORDS, batch=1, proba=ProbaAnswers(1, 0.15, "yes", "no"))
    request = traffic.request(2)  # record 2: p 0.2, positive
    assert traffic.judge(request, 200, json.dumps({"predictions": [[0.8, 0.2]]}).encode(), EXPECTED) is None
    wrong = json.dumps({"predictions": [[0.9, 0.1]]}).encode()
    assert "probability" in traffic.judge(request, 200, wrong, EXPECTED)


def test_malformed_requests_need_their_4xx_and_a_json_body_naming_the_field():
    traffic = Traffic(RECORDS, batch=2, malformed_share=0.5)
    drawn = [traffic.request(i) for i in range(200)]
    kinds = {r.kind for r in drawn}
    assert kinds == {"good", *MALFORMED}
    assert 60 < sum(r.kind != "good" for r in drawn) < 140  # a seeded draw of about half
    assert [r.kind for r in drawn] == [traffic.request(i).kind for i in range(200)]  # the same every run
    bad = Request(b"{", "bad_json", ())
    assert traffic.judge(bad, 400, b'{"error": "bad JSON"}', EXPECTED) is None
    assert "status 200, expected 400" in traffic.judge(bad, 200, b'{"predictions": []}', EXPECTED)
    assert "not JSON" in traffic.judge(bad, 400, b"Bad Request", EXPECTED)
    invalid = next(r for r in drawn if r.kind == "invalid_record")
    assert invalid.field == "x" and b"not-a-number" in invalid.body
    assert traffic.judge(invalid, 422, b'{"error": "record 1, field \'x\': not a number"}', EXPECTED) is None
    assert "does not name" in traffic.judge(invalid, 422, b'{"error": "invalid"}', EXPECTED)


# --- against a real server ---------------------------------------------------------------------------


@contextmanager
def stub(artifacts, fault=None):
    """tools/stub_server.py's app on 127.0.0.1, in a thread of this process."""
    loop, port = asyncio.new_event_loop(), load_test.free_port()
    runner = web.AppRunner(make_app(Scorer(artifacts), fault=fault), access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture(scope="module")
def reference(staged):
    """(artifacts, records, the CLI scorer's answers) on the staged artifacts' first 40 test rows."""
    from tools.load_check import expected_scores

    features = json.loads((staged.served / "onnx_features.json").read_text())
    records = typed_records(staged.served / "test.csv", features)[:40]
    return staged.served, records, expected_scores(records, staged.served)


def cell(base, reference, load):
    _, records, expected = reference
    traffic = Traffic(records, load.batch, load.malformed_share, load.payload)
    return asyncio.run(load_test.run_cell(base, load, traffic, expected))


def test_every_request_is_counted_and_every_answer_checked(reference):
    with stub(reference[0]) as base:
        load_test.wait_ready(base, None, 10)
        for load in (load_test.Load(1, 1, 25, 60), load_test.Load(4, 8, 30, 60, 0.3, "mixed")):
            figures = cell(base, reference, load)
            assert figures["requests"] == load.requests, figures["first_errors"]
            assert sum(figures["by_kind"].values()) == load.requests
            assert (figures["errors"], figures["wrong_answers"]) == (0, 0), figures["first_errors"]
            assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert set(figures["by_kind"]) == {"good", *MALFORMED}


def test_a_wrong_decision_and_a_missing_4xx_are_caught(reference):
    with stub(reference[0], fault="wrong-decision") as base:
        figures = cell(base, reference, load_test.Load(2, 1, 20, 60))
    assert figures["wrong_answers"] == 20 and figures["errors"] == 0
    assert "the CLI scorer gives" in figures["first_errors"][0]
    with stub(reference[0], fault="no-4xx") as base:
        figures = cell(base, reference, load_test.Load(2, 4, 60, 60, malformed_share=0.3))
    malformed = figures["requests"] - figures["by_kind"]["good"]
    assert malformed > 0 and figures["errors"] == malformed and figures["wrong_answers"] == 0


def test_the_command_line_starts_the_server_and_stops_it_with_sigterm(reference, tmp_path):
    artifacts = reference[0]
    records = tmp_path / "rows.csv"
    records.write_text("".join((artifacts / "test.csv").read_text().splitlines(keepends=True)[:21]))
    command = f"python -m tools.stub_server --artifacts {artifacts} --port {{port}}"
    code = load_test.main(
        [
            "--command",
            command,
            "--artifacts",
            str(artifacts),
            "--records",
            str(records),
            "--connections",
            "1,3",
            "--batch",
            "1,5",
            "--requests",
            "12",
            "--json",
            str(tmp_path / "report.json"),
        ]
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == 0, report
    assert [(c["connections"], c["records_per_request"], c["requests"]) for c in report["cells"]] == [
        (1, 1, 12),
        (3, 1, 12),
        (1, 5, 12),
        (3, 5, 12),
    ]
    assert report["server_exit_code"] == 0 and report["records"] == 20


def test_a_server_that_dies_before_ping_is_reported_with_its_exit_code(tmp_path, capsys):
    command = "python -c 'import sys; print(42); sys.exit(3)'"
    assert load_test.main(["--command", command, "--artifacts", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "42" in err and err.strip().endswith("error: the server exited with code 3 before answering /ping")

"""The standalone scorer on the artifacts the stage scripts built (`served`): same inputs as training, same
scores as scikit-learn, clear errors, atomic output, load-time checks, no heavy imports."""

from __future__ import annotations

import csv
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from onnxship.contract import spec
from onnxship.contract.encode import InvalidRecord, number_converter
from onnxship.contract.runtime import VersionWarning, check_runtime
from onnxship.core.errors import UserError
from onnxship.core.files import read_json
from onnxship.serve.files import score_file
from onnxship.serve.overhead import overhead
from onnxship.serve.scorer import Scorer
from onnxship.train import data
from onnxship.train.data import Roles
from onnxship.train.lineage import load_verified_joblib
from onnxship.verify import parity
from tests.conftest import REPO


def raw_rows(artifacts: Path) -> list[dict]:
    with open(artifacts / "test.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def sklearn_reference(artifacts: Path):
    """The trained pipeline (verified before unpickling) and the column roles."""
    lineage = read_json(artifacts / "lineage.json")
    return load_verified_joblib(artifacts / "best_model.joblib", lineage["model_sha256"]), Roles(
        **lineage["roles"]
    )


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "onnxship.serve", *args], cwd=cwd or REPO, capture_output=True, text=True
    )


def read_scores(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# --- same inputs and scores as training ---------------------------------------------------------


def test_feeds_are_exactly_what_training_feeds(served):
    """Raw CSV strings, edge rows included, become the very tensors the parity gate builds from
    onnxship.train.data (pandas, training's reading): same float32 values, same NaNs, same strings."""
    s = Scorer(served)
    raw = data.read_csv(served / "test.csv")
    edges, _ = parity.edge_rows(raw.iloc[0], s.features, raw)
    frame = pd.concat([raw.iloc[:200], edges], ignore_index=True)
    _, roles = sklearn_reference(served)
    frame_features = data.features(frame, roles)
    expected = {spec_["name"]: frame_features[spec_["name"]].to_numpy().reshape(-1, 1) for spec_ in s.inputs}
    got = s.feeds([s.values(record, i) for i, record in enumerate(frame.to_dict("records"), 1)])
    assert got.keys() == s.encoder.input_types().keys()
    for name, array in expected.items():
        column = s.encoder.layout.column(got, name)  # its [n, 1] place in the packed tensor (v2)
        assert column.dtype == array.dtype and column.shape == array.shape, name
        if array.dtype == np.float32:
            np.testing.assert_array_equal(column, array, err_msg=name)  # NaN == NaN here
        else:
            assert column.tolist() == array.tolist(), name


def test_scores_match_scikit_learn_on_test_and_edge_rows(served):
    s = Scorer(served)
    pipeline, roles = sklearn_reference(served)
    raw = data.read_csv(served / "test.csv")
    edges, cases = parity.edge_rows(raw.iloc[3], s.features, raw)
    frame = pd.concat([raw, edges], ignore_index=True)
    expected = pipeline.predict_proba(data.features(frame, roles))[:, 1]
    probability, decision = s.score_records(frame.to_dict("records"))
    assert np.abs(probability - expected).max() < 1e-4
    threshold = float((served / "threshold.txt").read_text())
    near = np.abs(expected - threshold) < 1e-4  # float32 may flip a row sitting on the threshold
    assert (decision == (expected >= threshold))[~near].all()
    assert any(case.startswith("unseen category") for case in cases)


def test_one_record_scores_as_in_a_batch_and_json_types_mean_the_same(served):
    s = Scorer(served)
    rows = raw_rows(served)[:50]
    batch_p, batch_d = s.score_records(rows)
    for row, p, d in zip(rows, batch_p, batch_d, strict=True):
        assert s.score_record(row) == pytest.approx((p, d), abs=1e-6)
    # JSON numbers instead of numeric strings, null instead of empty cells, an unseen category.
    record = dict(rows[0])
    typed = {spec["name"]: record[spec["name"]] for spec in s.inputs}
    typed.update({spec["name"]: float(typed[spec["name"]]) for spec in s.inputs if spec["role"] == "numeric"})
    assert s.score_record(typed) == s.score_record(record)
    numeric = next(spec["name"] for spec in s.inputs if spec["role"] == "numeric")
    categorical = next(spec["name"] for spec in s.inputs if spec["role"] == "categorical")
    for token in ("", "NA", "null", "-"):
        assert s.score_record({**record, numeric: token}) == s.score_record({**record, numeric: None})
    assert s.score_record({**record, categorical: None}) == s.score_record({**record, categorical: ""})
    assert s.score_record({**record, numeric: " 12.5\t"}) == s.score_record({**record, numeric: 12.5})
    # An unseen category is not an error: it scores as the all-zero one-hot scikit-learn gives it.
    pipeline, roles = sklearn_reference(served)
    unseen = {**record, categorical: "never seen in training"}
    expected = pipeline.predict_proba(data.features(pd.DataFrame([unseen]), roles))[0, 1]
    assert s.score_record(unseen)[0] == pytest.approx(expected, abs=1e-4)


def test_number_check_is_exactly_the_contract_pattern(served):
    """The encoder's fast check for v1's number_pattern accepts exactly what the pattern accepts."""
    s = Scorer(served)
    assert s.features["encoding"]["numeric"]["number_pattern"] == spec.NUMBER_PATTERN
    pattern = re.compile(spec.NUMBER_PATTERN)
    tokens = set(s.features["encoding"]["numeric"]["missing_tokens"])
    to_number = number_converter(tokens, spec.NUMBER_PATTERN)
    slow = number_converter(tokens, spec.NUMBER_PATTERN + "(?:)")  # the same pattern, matched as written
    alphabet = " \t0123456789.eE+-_xinfaNA,\n\u00a0\u0663"
    generator = random.Random(7)
    samples = ["".join(generator.choices(alphabet, k=generator.randint(0, 7))) for _ in range(20000)]
    samples += ["1.", ".5", "+.5e-3", "1e", "e1", "1e+", "--1", "1_0", "inf", "NaN", " 7 ", "\t-0\t", "١٢"]
    for text in samples:
        if text in tokens:
            assert np.isnan(to_number(text)), repr(text)
        elif pattern.fullmatch(text) and abs(float(text)) < 3.4e38:
            assert to_number(text) == float(text) == slow(text), repr(text)
        elif not pattern.fullmatch(text):
            for convert in (to_number, slow):
                with pytest.raises(ValueError, match="is not a number"):
                    convert(text)


@pytest.mark.parametrize(
    ("change", "column_role", "message"),
    [
        ("drop", "numeric", "the field is missing"),
        ("abc", "numeric", "'abc' is not a number"),
        ("1_000", "numeric", "'1_000' is not a number"),
        ("inf", "numeric", "'inf' is not a number"),
        ("1e39", "numeric", "beyond the float32 range"),
        (True, "numeric", "expected a number, text or null, got bool True"),
        ([1.0], "numeric", "expected a number, text or null, got list"),
        (3, "categorical", "expected text or null, got int 3"),
    ],
)
def test_an_invalid_record_names_the_column_and_the_problem(served, change, column_role, message):
    s = Scorer(served)
    record = dict(raw_rows(served)[0])
    column = next(spec["name"] for spec in s.inputs if spec["role"] == column_role)
    if change == "drop":
        del record[column]
    else:
        record[column] = change
    for call in (s.score_record, lambda r: s.score_records([r])):
        with pytest.raises(InvalidRecord, match=message) as caught:
            call(record)
        assert caught.value.column == column and caught.value.row == 1
        assert f"row 1, column '{column}'" in str(caught.value)


# --- the command line -------------------------------------------------------------------------------


def test_cli_scores_a_csv_in_batches_with_the_library_s_results(served, tmp_path):
    out, summary = tmp_path / "scores.csv", tmp_path / "summary.json"
    result = cli(
        "score", "--artifacts", str(served), "--input", str(served / "test.csv"), "--output", str(out),
        "--batch-size", "64", "--summary", str(summary), "--progress", "always",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "100%" in result.stderr and "scored 1,000 rows" in result.stderr
    scores = read_scores(out)
    assert [int(r["row"]) for r in scores] == list(range(1, 1001))
    s = Scorer(served)
    probability, decision = s.score_records(raw_rows(served))
    assert np.array_equal([float(r["probability"]) for r in scores], probability)
    assert [r["decision"] == "1" for r in scores] == decision.tolist()
    assert {r["label"] for r in scores} <= {s.positive_label, s.negative_label}
    report = json.loads(summary.read_text())
    assert report["rows_scored"] == 1000 and report["positives"] == int(decision.sum())
    # Batch size changes nothing but memory use.
    other = tmp_path / "one_batch.csv"
    assert cli("score", "--artifacts", str(served), "--input", str(served / "test.csv"),
               "--output", str(other), "--batch-size", "5000").returncode == 0  # fmt: skip
    assert other.read_bytes() == out.read_bytes()


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_cli_stops_at_an_invalid_row_with_one_line_and_no_output(served, tmp_path):
    rows = raw_rows(served)[:10]
    rows[6]["total_day_minutes"] = "12,5"
    work = tmp_path / "work"
    work.mkdir()
    source = write_jsonl(work / "rows.jsonl", rows)
    out = work / "scores.csv"
    out.write_text("previous scores\n")
    result = cli("score", "--artifacts", str(served), "--input", str(source), "--output", str(out))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "row 7 (line 7), column 'total_day_minutes': '12,5' is not a number" in lines[0]
    assert "--skip-invalid" in lines[0]
    assert out.read_text() == "previous scores\n"  # untouched
    assert {p.name for p in work.iterdir()} == {"rows.jsonl", "scores.csv"}  # no temp file left


def test_cli_skip_invalid_scores_the_rest_and_reports_the_skipped(served, tmp_path):
    rows = raw_rows(served)[:20]
    rows[2]["state"] = 5  # wrong type
    del rows[9]["account_length"]  # missing field
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    source.write_text(source.read_text() + "not json\n")
    out, summary = tmp_path / "scores.jsonl", tmp_path / "summary.json"
    result = cli(
        "score", "--artifacts", str(served), "--input", str(source), "--output", str(out),
        "--skip-invalid", "--summary", str(summary),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "skipped 3 invalid rows (first: row 3 column 'state': expected text" in result.stderr
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row"] for r in scored] == [i for i in range(1, 21) if i not in (3, 10)]
    report = json.loads(summary.read_text())
    assert (report["rows_read"], report["rows_scored"], report["rows_skipped"]) == (21, 18, 3)
    assert [(i["row"], i["column"]) for i in report["invalid"]] == [
        (3, "state"),
        (10, "account_length"),
        (21, None),
    ]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing_column", "has no column 'state'"),
        ("tampered_model", "refusing a model the contract does not describe"),
        ("other_features", "onnx_features.json does not match the sha256 in onnx_metadata.json"),
        ("newer_contract", "has schema_version 3; this client reads onnx_features.json version 1 and 2"),
        ("major_runtime", "a different major version): install onnxruntime=="),
    ],
)
def test_cli_refuses_bad_artifacts_or_input_with_one_line(served, tmp_path, setup, message):
    source = served / "test.csv"
    metadata_path = served / "onnx_metadata.json"
    if setup == "missing_column":
        text = source.read_text().splitlines()
        source = tmp_path / "no_state.csv"
        source.write_text("\n".join(",".join(line.split(",")[1:]) for line in text) + "\n")
    elif setup == "tampered_model":
        (served / "model.onnx").write_bytes((served / "model.onnx").read_bytes() + b"\x00")
    elif setup == "other_features":
        features = json.loads((served / "onnx_features.json").read_text())
        (served / "onnx_features.json").write_text(json.dumps(features))  # same content, other bytes
    elif setup == "newer_contract":
        features = json.loads((served / "onnx_features.json").read_text())
        (served / "onnx_features.json").write_text(json.dumps({**features, "schema_version": 3}))
    elif setup == "major_runtime":
        metadata = json.loads(metadata_path.read_text())
        metadata["versions"]["onnxruntime"] = "0.9.0"
        metadata_path.write_text(json.dumps(metadata))
    out = tmp_path / "scores.csv"
    result = cli("score", "--artifacts", str(served), "--input", str(source), "--output", str(out))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not out.exists()


def test_cli_check_reports_what_the_artifacts_expect(served):
    result = cli("check", "--artifacts", str(served))
    assert result.returncode == 0, result.stderr
    metadata = json.loads((served / "onnx_metadata.json").read_text())
    assert result.stdout.startswith(f"ok: {metadata['family']} model, 19 inputs, positive 'yes' if p >= ")


def test_runtime_version_policy():
    assert check_runtime("1.32.0", "1.32.5", "strict") is None  # a patch release is the same
    with pytest.raises(UserError, match="different major version"):
        check_runtime("1.32.0", "2.0.0", "strict")
    with pytest.warns(VersionWarning, match="exported and checked with 1.32.0"):
        assert check_runtime("1.32.0", "1.30.0", "strict")
    with pytest.warns(VersionWarning):
        assert check_runtime("1.32.0", "2.0.0", "warn")
    assert check_runtime("1.32.0", "2.0.0", "off") is None


def test_version_check_warn_scores_with_a_warning(served, tmp_path):
    metadata_path = served / "onnx_metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["versions"]["onnxruntime"] = "0.9.0"
    metadata_path.write_text(json.dumps(metadata))
    out = tmp_path / "scores.csv"
    args = ["score", "--artifacts", str(served), "--input", str(served / "test.csv"), "--output", str(out)]
    result = cli(*args, "--version-check", "warn")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("warning: onnxruntime ") and len(read_scores(out)) == 1000


def test_library_errors_are_user_errors(served, tmp_path):
    with pytest.raises(UserError, match="not found: point --artifacts"):
        Scorer(tmp_path)
    with pytest.raises(UserError, match="output file is the input file"):
        score_file(Scorer(served), served / "test.csv", served / "test.csv")


# --- what the scorer imports, and what it costs -------------------------------------------------------


IMPORT_CHECK = """
import json, sys
from onnxship.serve import cli, scorer
artifacts, source, out, record = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
code = cli.main(["score", "--artifacts", artifacts, "--input", source, "--output", out])
scorer.Scorer(artifacts).score_record(record)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
sys.exit(code)
"""


def test_scorer_imports_neither_scikit_learn_nor_pandas_nor_joblib(served, tmp_path):
    out = tmp_path / "scores.csv"
    args = [str(served), str(served / "test.csv"), str(out), json.dumps(raw_rows(served)[0])]
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, *args], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert {"onnxruntime", "numpy", "onnxship"} <= loaded
    # jsonschema validates the contract files (onnxship/contract/schema.py), as every client does.
    assert not loaded & {"sklearn", "pandas", "joblib", "scipy", "skl2onnx", "onnx"}
    assert len(read_scores(out)) == 1000


def test_overhead_report_is_consistent(served):
    # Structure and arithmetic only: the figure itself is measured by the benchmark stage
    # (benchmark.json: backends.onnx.scorer_overhead), not asserted by a timed test that would
    # flake on a loaded machine.
    rows = raw_rows(served)[:100]
    report = overhead(served, rows, repetitions=300, warmup=20)
    assert report["batch_size"] == 1 and report["repetitions"] == 300
    assert report["session_run_p50_us"] > 0 and report["scorer_p50_us"] > 0
    assert report["ratio"] == pytest.approx(report["scorer_p50_us"] / report["session_run_p50_us"], abs=2e-3)
    assert report["overhead_pct"] == pytest.approx(100 * (report["ratio"] - 1), abs=0.1)
    assert report["goal_overhead_pct"] == 30.0 and report["meets_goal"] == (report["ratio"] <= 1.3)


def test_help_prints_usage_and_exits_0():
    for args in (["--help"], ["score", "--help"], ["check", "--help"]):
        result = cli(*args)
        assert result.returncode == 0 and result.stdout.startswith("usage:"), (args, result.stderr)

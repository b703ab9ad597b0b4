"""The parity gate and the export stage as the stage scripts: `scripts/parity.py` exits 1 with the
reason in parity_report.json on a model with two inputs swapped, a wrong threshold in the metadata
and contract files a client refuses; `scripts/export.py` exits 2 with one line on an edited
threshold, a tampered best_model.joblib and a contract that breaks its schema, writing nothing.

Each script runs as `python scripts/<stage>.py` runs it (its ``__main__`` block: one-line errors,
the exit code), in this process, in a private copy of the project the stage scripts built in this
process (``staged_project``): the same files as the DVC build (tests/test_staged.py), without a
Python start per run. tests/test_gate_faults.py proves the gate on every family through the Scorer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
import pytest

from tests.test_corpus import run_stage


def run_parity(root: Path, monkeypatch, capsys) -> tuple[int, dict]:
    code, _ = run_stage("parity", root, monkeypatch, capsys)
    return code, json.loads((root / "artifacts" / "parity_report.json").read_text())


def test_gate_fails_on_swapped_numeric_inputs(staged_project, monkeypatch, capsys):
    from tests.test_gate_faults import swap_packed_columns

    artifacts = staged_project / "artifacts"
    features = json.loads((artifacts / "onnx_features.json").read_text())
    a, b = "total_day_minutes", "number_customer_service_calls"
    # The graph reads the two columns of the packed tensor crossed.
    model = swap_packed_columns(onnx.load(artifacts / "model.onnx"), features, a, b)
    data = model.SerializeToString()
    (artifacts / "model.onnx").write_bytes(data)
    metadata = json.loads((artifacts / "onnx_metadata.json").read_text())
    metadata["model_sha256"] = hashlib.sha256(data).hexdigest()  # a consistent defect
    (artifacts / "onnx_metadata.json").write_text(json.dumps(metadata))
    code, report = run_parity(staged_project, monkeypatch, capsys)
    assert code == 1 and not report["passed"]
    reasons = report["backends"]["onnx"]["reasons"]
    assert any("max |p_sklearn - p_backend|" in r for r in reasons), reasons


def test_gate_fails_on_wrong_threshold_in_metadata(staged_project, monkeypatch, capsys):
    artifacts = staged_project / "artifacts"
    metadata_text = (artifacts / "onnx_metadata.json").read_text()
    metadata = json.loads(metadata_text)
    metadata["threshold"] = 0.5  # the default someone forgot to replace with the tuned one
    (artifacts / "onnx_metadata.json").write_text(json.dumps(metadata))
    code, report = run_parity(staged_project, monkeypatch, capsys)
    assert code == 1
    for backend in ("onnx", "int8"):
        reasons = report["backends"][backend]["reasons"]
        assert any("metadata threshold 0.5 != trained threshold" in r for r in reasons), reasons
    # Put right, the same files pass again: the gate keeps nothing of the failed run.
    (artifacts / "onnx_metadata.json").write_text(metadata_text)
    code, report = run_parity(staged_project, monkeypatch, capsys)
    assert code == 0 and report["passed"]


@pytest.mark.parametrize("fault", ["newer_schema_version", "features_of_another_export", "edited_threshold"])
def test_gate_fails_on_contract_files_a_client_refuses_and_on_an_edited_threshold(
    staged_project, fault, monkeypatch, capsys
):
    artifacts = staged_project / "artifacts"
    if fault == "newer_schema_version":
        metadata = json.loads((artifacts / "onnx_metadata.json").read_text())
        (artifacts / "onnx_metadata.json").write_text(json.dumps({**metadata, "schema_version": 2}))
        reason = "has schema_version 2; this client reads onnx_metadata.json version 1"
    elif fault == "features_of_another_export":
        features = artifacts / "onnx_features.json"
        features.write_bytes(features.read_bytes() + b"\n")
        reason = "onnx_features.json does not match the sha256 in onnx_metadata.json"
    else:
        (artifacts / "threshold.txt").write_text("0.9\n")
        reason = "threshold.txt says 0.9 but lineage.json records the tuned threshold"
        code, stderr = run_stage("export", staged_project, monkeypatch, capsys)
        assert code == 2 and reason in stderr.strip().splitlines()[-1]
    code, report = run_parity(staged_project, monkeypatch, capsys)
    assert code == 1 and not report["passed"]
    for backend in ("onnx", "int8"):
        reasons = report["backends"][backend]["reasons"]
        assert any(reason in r for r in reasons), report["backends"][backend]


# --- the export stage refuses to write ---------------------------------------------------------------


def exported(root: Path) -> dict[str, bytes]:
    names = ("model.onnx", "onnx_features.json", "onnx_metadata.json")
    return {name: (root / "artifacts" / name).read_bytes() for name in names}


def test_export_stage_refuses_to_write_a_contract_that_breaks_the_schema(staged_project, monkeypatch, capsys):
    lineage_path = staged_project / "artifacts" / "lineage.json"
    before = exported(staged_project)
    lineage = json.loads(lineage_path.read_text())
    lineage["target"]["positive_label"] = 1  # a label that is not a string
    lineage_path.write_text(json.dumps(lineage))
    code, stderr = run_stage("export", staged_project, monkeypatch, capsys)
    assert code == 2 and "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: onnx_metadata.json does not match onnx_metadata.v1.json: ")
    assert "$.positive_label is 1" in last
    assert exported(staged_project) == before  # nothing written


def test_export_stage_refuses_a_tampered_joblib(staged_project, monkeypatch, capsys):
    model_path = staged_project / "artifacts" / "best_model.joblib"
    original, before = model_path.read_bytes(), exported(staged_project)
    model_path.write_bytes(original + b"\x00")  # any change: the sha256 no longer matches lineage.json
    code, stderr = run_stage("export", staged_project, monkeypatch, capsys)
    assert code == 2 and "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "refusing to unpickle it" in last, stderr
    assert exported(staged_project) == before
    model_path.write_bytes(original)
    assert run_stage("export", staged_project, monkeypatch, capsys)[0] == 0  # the genuine file still exports
    assert exported(staged_project) == before  # byte-identical

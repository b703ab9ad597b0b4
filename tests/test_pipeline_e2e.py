"""The real pipeline, end to end: real DVC, real ONNX Runtime, in a temporary copy of the repo.

Small params keep it quick: two candidate families, three folds, few benchmark repetitions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
import pytest
from ruamel.yaml import YAML

from tests.dvc_project import STAGES, dvc, edit_params, git_project, repro, sh

pytestmark = pytest.mark.e2e
ARTIFACTS = [
    "best_model.joblib",
    "threshold.txt",
    "lineage.json",
    "test.csv",
    "model.onnx",
    "onnx_features.json",
    "onnx_metadata.json",
    "model.int8.onnx",
    "quantize_report.json",
    "parity_report.json",
    "benchmark.json",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git repo holding the working tree's files, as a fresh clone would, with fast params."""
    root = git_project(tmp_path_factory.mktemp("project"))
    assert repro(root) == STAGES
    return root


def test_repro_builds_every_artifact(project):
    artifacts = project / "artifacts"
    for name in ARTIFACTS:
        assert (artifacts / name).stat().st_size > 0, name
    metadata = json.loads((artifacts / "onnx_metadata.json").read_text())
    model = onnx.load(artifacts / "model.onnx")
    onnx.checker.check_model(model, full_check=True)
    features = json.loads((artifacts / "onnx_features.json").read_text())
    assert [i["onnx_name"] for i in features["inputs"]] == [i.name for i in model.graph.input]
    assert metadata["threshold"] == float((artifacts / "threshold.txt").read_text())
    lineage = json.loads((artifacts / "lineage.json").read_text())
    assert set(lineage["cv"]["candidates"]) == {"logistic_regression", "hist_gradient_boosting"}
    assert lineage["chosen"]["family"] == metadata["family"]
    parity = json.loads((artifacts / "parity_report.json").read_text())
    assert parity["passed"] and parity["rows"]["test"] == lineage["split"]["test_rows"]
    bench = json.loads((artifacts / "benchmark.json").read_text())
    assert set(bench["latency"]) == {"sklearn", "onnx", "int8"}
    assert set(bench["latency"]["onnx"]) == {"1", "64", "1024"}
    shown = json.loads(dvc(project, "metrics", "show", "--json").stdout)
    files = {name for entry in shown.values() for name in entry.get("data", {})}
    assert {"artifacts/parity_report.json", "artifacts/benchmark.json"} <= files


def test_noop_repro_runs_nothing(project):
    assert repro(project) == []
    assert "up to date" in dvc(project, "status").stdout


def test_parity_tolerance_change_reruns_parity_alone(project):
    edit_params(project, lambda p: p["parity"]["tolerances"]["onnx"].__setitem__("max_abs_diff", 2.0e-4))
    assert repro(project) == ["parity"]
    report = json.loads((project / "artifacts" / "parity_report.json").read_text())
    assert report["backends"]["onnx"]["tolerance"]["max_abs_diff"] == 2.0e-4


def test_train_hyperparameter_change_reruns_train_and_downstream(project):
    chosen = json.loads((project / "artifacts" / "lineage.json").read_text())["chosen"]["family"]
    knob = {"hist_gradient_boosting": "max_iter", "logistic_regression": "max_iter"}[chosen]
    edit_params(project, lambda p: p["train"][chosen].__setitem__(knob, p["train"][chosen][knob] + 7))
    assert repro(project) == STAGES


def test_benchmark_param_change_measures_afresh(project):
    # Back and forth: the run cache must not hand back the first run's figures.
    before = (project / "artifacts" / "benchmark.json").read_text()
    edit_params(project, lambda p: p["benchmark"].__setitem__("repetitions", 21))
    assert repro(project) == ["benchmark"]
    edit_params(project, lambda p: p["benchmark"].__setitem__("repetitions", 20))
    assert repro(project) == ["benchmark"]
    assert (project / "artifacts" / "benchmark.json").read_text() != before


def outs_md5(project: Path) -> dict[str, str]:
    lock = YAML(typ="safe").load((project / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def test_forced_repro_is_byte_identical(project):
    repro(project, "--force")
    first = outs_md5(project)
    repro(project, "--force")
    second = outs_md5(project)
    first.pop("artifacts/benchmark.json")
    second.pop("artifacts/benchmark.json")
    assert first == second and len(first) == len(ARTIFACTS) - 1


def run_parity(project: Path) -> tuple[int, dict]:
    result = sh(project, sys.executable, "scripts/parity.py", check=False)
    return result.returncode, json.loads((project / "artifacts" / "parity_report.json").read_text())


def test_gate_fails_on_swapped_numeric_inputs(project):
    artifacts = project / "artifacts"
    original = (artifacts / "model.onnx").read_bytes()
    metadata_text = (artifacts / "onnx_metadata.json").read_text()
    try:
        model = onnx.load(artifacts / "model.onnx")
        a, b = "total_day_minutes", "number_customer_service_calls"
        # Swap the two inputs' roles inside the graph: a client feeding by name gets them crossed.
        for node in model.graph.node:
            node.input[:] = [{a: b, b: a}.get(name, name) for name in node.input]
        data = model.SerializeToString()
        (artifacts / "model.onnx").write_bytes(data)
        metadata = json.loads(metadata_text)
        metadata["model_sha256"] = __import__("hashlib").sha256(data).hexdigest()  # a consistent defect
        (artifacts / "onnx_metadata.json").write_text(json.dumps(metadata))
        code, report = run_parity(project)
        assert code == 1 and not report["passed"]
        reasons = report["backends"]["onnx"]["reasons"]
        assert any("max |p_sklearn - p_backend|" in r for r in reasons), reasons
    finally:
        (artifacts / "model.onnx").write_bytes(original)
        (artifacts / "onnx_metadata.json").write_text(metadata_text)


def test_gate_fails_on_wrong_threshold_in_metadata(project):
    artifacts = project / "artifacts"
    metadata_text = (artifacts / "onnx_metadata.json").read_text()
    try:
        metadata = json.loads(metadata_text)
        metadata["threshold"] = 0.5  # the default someone forgot to replace with the tuned one
        (artifacts / "onnx_metadata.json").write_text(json.dumps(metadata))
        code, report = run_parity(project)
        assert code == 1
        for backend in ("onnx", "int8"):
            reasons = report["backends"][backend]["reasons"]
            assert any("metadata threshold 0.5 != trained threshold" in r for r in reasons), reasons
    finally:
        (artifacts / "onnx_metadata.json").write_text(metadata_text)
    code, report = run_parity(project)
    assert code == 0 and report["passed"]

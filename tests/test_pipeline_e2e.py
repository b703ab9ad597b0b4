"""The real pipeline, end to end: real DVC, real ONNX Runtime, in a temporary copy of the repo.

Small params keep it quick: two candidate families, three folds, few benchmark repetitions.
"""

from __future__ import annotations

import json

import onnx
import pytest

from tests.dvc_project import STAGES, dvc, edit_params, repro

pytestmark = pytest.mark.e2e
ARTIFACTS = [
    "best_model.joblib",
    "threshold.txt",
    "lineage.json",
    "test.csv",
    "calibration.csv",
    "model.onnx",
    "onnx_features.json",
    "onnx_metadata.json",
    "model.int8.onnx",
    "quantize_report.json",
    "parity_report.json",
    "benchmark.json",
    "recommendation.json",
    "metrics.json",
    "plots/roc.csv",
    "plots/pr.csv",
    "plots/prob_diff.csv",
    "plots/latency.csv",
]


def test_repro_builds_every_artifact(project):
    artifacts = project / "artifacts"
    for name in ARTIFACTS:
        assert (artifacts / name).stat().st_size > 0, name
    metadata = json.loads((artifacts / "onnx_metadata.json").read_text())
    model = onnx.load(artifacts / "model.onnx")
    onnx.checker.check_model(model, full_check=True)
    features = json.loads((artifacts / "onnx_features.json").read_text())
    assert features["schema_version"] == 2  # packed inputs: one tensor per role
    assert [t["onnx_name"] for t in features["tensors"]] == [i.name for i in model.graph.input]
    assert metadata["threshold"] == float((artifacts / "threshold.txt").read_text())
    lineage = json.loads((artifacts / "lineage.json").read_text())
    assert set(lineage["cv"]["candidates"]) == {"logistic_regression", "hist_gradient_boosting"}
    assert lineage["chosen"]["family"] == metadata["family"]
    parity = json.loads((artifacts / "parity_report.json").read_text())
    assert parity["passed"] and parity["rows"]["test"] == lineage["split"]["test_rows"]
    bench = json.loads((artifacts / "benchmark.json").read_text())
    assert set(bench["backends"]) == {"sklearn", "onnx", "int8"}
    for name, backend in bench["backends"].items():
        assert (
            backend["file_bytes"]
            == (
                artifacts
                / {"sklearn": "best_model.joblib", "onnx": "model.onnx", "int8": "model.int8.onnx"}[name]
            )
            .stat()
            .st_size
        )
        assert backend["load_ms"] > 0 and backend["peak_rss_mb"] >= backend["rss_before_load_mb"] > 0
        for mode in ("model", "end_to_end"):
            cells = backend[mode]["threads_1"]
            assert set(cells) == {"batch_1", "batch_64", "batch_1024"}
            for cell in cells.values():
                assert cell["samples"] >= 5 and 0 < cell["p50_us"] <= cell["p95_us"] <= cell["p99_us"]
    for mode in ("model", "end_to_end"):
        for batch in ("batch_1", "batch_1024"):
            sk = bench["backends"]["sklearn"][mode]["threads_1"][batch]["p50_us"]
            onnx_p50 = bench["backends"]["onnx"][mode]["threads_1"][batch]["p50_us"]
            ratio = bench["speedup_p50_vs_sklearn"][mode]["onnx"]["threads_1"][batch]
            assert abs(ratio - sk / onnx_p50) < 0.01
    assert bench["environment"]["cpu_count"] >= 1 and bench["environment"]["versions"]["onnxruntime"]
    choice = json.loads((artifacts / "recommendation.json").read_text())
    assert choice["choice"] in {"sklearn", "onnx", "int8"} and choice["reasons"]
    assert "INT8 equals FP32: nothing was quantized" in choice["reasons"]  # neither family has MatMul
    plots = json.loads(dvc(project, "plots", "show", "--json").stdout)["data"]
    assert set(plots) == {"latency", "roc", "precision_recall", "prob_diff"}
    for name, rendered in plots.items():
        assert rendered[0]["content"]["data"]["values"], f"plot {name} has no data"
    # The headline is the only metrics file, and its table fits a 160-column terminal.
    shown = json.loads(dvc(project, "metrics", "show", "--json").stdout)
    files = {name for entry in shown.values() for name in entry.get("data", {})}
    assert files == {"artifacts/metrics.json"}
    table = dvc(project, "metrics", "show").stdout.splitlines()
    assert len(table) == 2 and table[1].startswith("artifacts/metrics.json")
    assert max(map(len, table)) <= 160, table
    for column in ("test_ap", "test_auc", "threshold", "onnx_ok", "onnx_diff_ppm", "onnx_x1", "serve"):
        assert column in table[0].split(), column


def test_noop_repro_runs_nothing(project):
    assert repro(project) == []
    assert "up to date" in dvc(project, "status").stdout


def test_parity_tolerance_change_reruns_parity_alone(project):
    edit_params(project, lambda p: p["parity"]["tolerances"]["onnx"].__setitem__("max_abs_diff", 2.0e-4))
    # recommend reads the parity report, so it follows; train, export, quantize and benchmark do not.
    assert repro(project) == ["parity", "recommend"]
    report = json.loads((project / "artifacts" / "parity_report.json").read_text())
    assert report["backends"]["onnx"]["tolerance"]["max_abs_diff"] == 2.0e-4


def test_train_hyperparameter_change_reruns_train_and_downstream(compared_project):
    # A hidden knob of the chosen family (params.yaml does not show the family's block), set under
    # its section in a copy of this build, then `dvc repro` (tests/conftest.py ``compared_project``,
    # whose two revisions tests/test_compare.py and tests/test_render_plots.py compare).
    assert compared_project.key.startswith("train.") and compared_project.ran == STAGES


def test_benchmark_param_change_measures_afresh(project):
    # Back and forth: the run cache must not hand back the first run's figures.
    before = (project / "artifacts" / "benchmark.json").read_text()
    edit_params(project, lambda p: p["benchmark"].__setitem__("min_repetitions", 6))
    assert repro(project) == ["benchmark", "recommend"]
    edit_params(project, lambda p: p["benchmark"].__setitem__("min_repetitions", 5))
    assert repro(project) == ["benchmark", "recommend"]
    assert (project / "artifacts" / "benchmark.json").read_text() != before


def test_a_failing_stage_leaves_no_stale_output(project):
    artifacts = project / "artifacts"
    original = (project / "params.yaml").read_text()
    try:
        edit_params(project, lambda p: p["data"].__setitem__("positive_label", "maybe"))
        result = dvc(project, "repro", check=False)
        assert result.returncode != 0
        assert "error: positive label 'maybe' is not a value of 'churn'" in result.stdout + result.stderr
        # DVC removed train's outputs before running it; nothing downstream ran on stale ones.
        assert not (artifacts / "best_model.joblib").exists()
        assert "changed" in dvc(project, "status").stdout
    finally:
        (project / "params.yaml").write_text(original)
    repro(project)
    assert (artifacts / "best_model.joblib").exists()
    assert "up to date" in dvc(project, "status").stdout

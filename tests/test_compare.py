"""Comparing results: `dvc metrics diff` / `dvc params diff` against the baseline branch, and
`dvc exp run -S` re-running only the stages a param change invalidates, listed by `dvc exp show`.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from tests.dvc_project import STAGES, dvc, edit_params, git, ran_stages, repro

pytestmark = pytest.mark.e2e
BASELINE = "main"  # the branch `built_project` commits its results on
METRICS = {
    "artifacts/lineage.json",
    "artifacts/quantize_report.json",
    "artifacts/parity_report.json",
    "artifacts/benchmark.json",
    "artifacts/recommendation.json",
}


@pytest.fixture
def project(built_project: Path, tmp_path: Path) -> Path:
    """A private copy of the built project, its tiny-params results committed on `main`."""
    return Path(shutil.copytree(built_project, tmp_path / "project", symlinks=True))


def committed(project: Path, rev: str, path: str) -> dict:
    return json.loads(git(project, "show", f"{rev}:{path}").stdout)


def table_row(table: str, metric: str) -> list[str]:
    """The cells of ``metric``'s row in DVC's plain-text table (path, metric, old, new, change)."""
    return next(line.split() for line in table.splitlines() if f" {metric} " in line)


def test_metrics_and_params_diff_against_the_baseline_branch(project):
    git(project, "checkout", "-q", "-b", "boosting")
    edit_params(project, lambda p: p["train"].__setitem__("candidates", ["hist_gradient_boosting"]))
    assert repro(project) == STAGES
    git(project, "commit", "-qam", "try gradient boosting")

    params = json.loads(dvc(project, "params", "diff", BASELINE, "--json").stdout)
    assert list(params["params.yaml"]) == ["train.candidates"]
    change = params["params.yaml"]["train.candidates"]
    assert "logistic_regression" in change["old"] and "hist_gradient_boosting" in change["new"]

    metrics = json.loads(dvc(project, "metrics", "diff", BASELINE, "--json").stdout)
    assert set(metrics) == METRICS
    old_parity = committed(project, BASELINE, "artifacts/parity_report.json")
    new_parity = committed(project, "HEAD", "artifacts/parity_report.json")
    fp32 = metrics["artifacts/parity_report.json"]["backends.onnx.max_abs_diff"]
    assert fp32["old"] == old_parity["backends"]["onnx"]["max_abs_diff"]
    assert fp32["new"] == new_parity["backends"]["onnx"]["max_abs_diff"]
    # Float32 rounding: small but real, and different for the two model families.
    assert 0 < fp32["old"] < 1e-4 and 0 < fp32["new"] < 1e-4 and fp32["old"] != fp32["new"]
    assert fp32["diff"] == pytest.approx(fp32["new"] - fp32["old"])
    bench = metrics["artifacts/benchmark.json"]
    assert bench["model_family"] == {"old": "logistic_regression", "new": "hist_gradient_boosting"}
    for key in (
        "backends.sklearn.model.threads_1.batch_1.p50_us",
        "backends.onnx.end_to_end.threads_1.batch_1.p50_us",
        "speedup_p50_vs_sklearn.model.onnx.threads_1.batch_1",
    ):
        assert bench[key]["old"] > 0 and bench[key]["new"] > 0, key
    lineage = metrics["artifacts/lineage.json"]
    assert "cv.candidates.hist_gradient_boosting.mean" in lineage
    assert lineage["test_scores.average_precision"]["new"] > 0

    # The table a user reads: 5 decimals (DVC's default) turn the FP32 differences into 0.0;
    # --precision 10 shows them.
    default = table_row(dvc(project, "metrics", "diff", BASELINE).stdout, "backends.onnx.max_abs_diff")
    precise = table_row(
        dvc(project, "metrics", "diff", BASELINE, "--precision", "10").stdout, "backends.onnx.max_abs_diff"
    )
    assert float(default[2]) == float(default[3]) == 0.0
    assert float(precise[2]) == round(fp32["old"], 10) > 0
    assert float(precise[3]) == round(fp32["new"], 10) > 0


def test_exp_run_reruns_only_invalidated_stages_and_exp_show_lists_metrics(project):
    result = dvc(project, "exp", "run", "-S", "parity.margin=0.05")
    assert ran_stages(result.stdout) == ["parity", "recommend"]  # recommend reads the parity report
    for stage in ("train", "export", "quantize", "benchmark"):
        assert f"Stage '{stage}' didn't change, skipping" in result.stdout, stage
    result = dvc(project, "exp", "run", "-S", "benchmark.min_repetitions=4")
    assert ran_stages(result.stdout) == ["benchmark", "recommend"]

    shown = json.loads(dvc(project, "exp", "show", "--json").stdout)
    baseline = next(row for row in shown if row["name"] == BASELINE)
    runs = [rev["data"] for exp in baseline["experiments"] for rev in exp["revs"]]
    assert len(runs) == 2
    by_margin = {run["params"]["params.yaml"]["data"]["parity"]["margin"]: run for run in runs}
    assert set(by_margin) == {0.05}  # the second run started from the first one's workspace
    reps = sorted(run["params"]["params.yaml"]["data"]["benchmark"]["min_repetitions"] for run in runs)
    assert reps == [3, 4]
    for run in runs:
        assert set(run["metrics"]) == METRICS
        parity = run["metrics"]["artifacts/parity_report.json"]["data"]
        assert parity["margin"] == 0.05 and parity["passed"] is True
    # What did not run kept the baseline's results (exp show leaves out lists and nulls).
    trained = committed(project, BASELINE, "artifacts/lineage.json")
    for run in runs:
        lineage = run["metrics"]["artifacts/lineage.json"]["data"]
        assert lineage["model_sha256"] == trained["model_sha256"]
        assert lineage["test_scores"] == trained["test_scores"]

    rows = list(csv.reader(io.StringIO(dvc(project, "exp", "show", "--csv").stdout)))
    header, experiments = rows[0], [row for row in rows[1:] if row[0]]
    assert len(experiments) == 2
    for column in (
        "backends.onnx.max_abs_diff",
        "backends.onnx.model.threads_1.batch_1.p50_us",
        "test_scores.average_precision",
    ):
        assert column in header, column
        for row in experiments:
            assert float(row[header.index(column)]) > 0, (column, row[0])

"""Comparing results: `dvc metrics diff` / `dvc params diff` against the baseline branch, and
`dvc exp run -S` re-running only the stages a param change invalidates, listed by `dvc exp show`.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.dvc_project import dvc, env, git, ran_stages

pytestmark = pytest.mark.e2e
BASELINE = "main"  # the branch `built_project` commits its results on
METRICS = {"artifacts/metrics.json"}  # the headline; the full reports are plain outputs
HEADLINE = "artifacts/metrics.json"


@pytest.fixture
def project(built_project: Path, tmp_path: Path) -> Path:
    """A private copy of the built project, its fast-params results committed on `main`."""
    return Path(shutil.copytree(built_project, tmp_path / "project", symlinks=True))


def committed(project: Path, rev: str, path: str) -> dict:
    return json.loads(git(project, "show", f"{rev}:{path}").stdout)


def table_row(table: str, metric: str) -> list[str]:
    """The cells of ``metric``'s row in DVC's plain-text table (path, metric, old, new, change)."""
    return next(line.split() for line in table.splitlines() if f" {metric} " in line)


def test_metrics_and_params_diff_against_the_baseline_branch(compared_project):
    # HEAD: a hidden knob of the chosen family changed, every stage re-run (tests/conftest.py).
    project = compared_project.root
    params = json.loads(dvc(project, "params", "diff", BASELINE, "--json").stdout)
    assert list(params["params.yaml"]) == [compared_project.key]
    change = params["params.yaml"][compared_project.key]
    assert change["old"] is None and change["new"] == pytest.approx(compared_project.value)  # added

    metrics = json.loads(dvc(project, "metrics", "diff", BASELINE, "--json").stdout)
    assert set(metrics) == METRICS
    diff = metrics[HEADLINE]
    old, new = committed(project, BASELINE, HEADLINE), committed(project, "HEAD", HEADLINE)
    for rev, record in (("old", old), ("new", new)):
        assert diff["onnx_diff_ppm"][rev] == record["onnx_diff_ppm"], rev
    # Float32 rounding: small but real, in millionths.
    new_parity = committed(project, "HEAD", "artifacts/parity_report.json")
    assert new["onnx_diff_ppm"] == round(new_parity["backends"]["onnx"]["max_abs_diff"] * 1e6, 4)
    assert 0 < old["onnx_diff_ppm"] < 100 and 0 < new["onnx_diff_ppm"] < 100
    assert diff["onnx_diff_ppm"]["diff"] == pytest.approx(new["onnx_diff_ppm"] - old["onnx_diff_ppm"])
    lineage = committed(project, "HEAD", "artifacts/lineage.json")
    assert diff["test_ap"]["new"] == lineage["test_scores"]["average_precision"]
    for key in ("onnx_x1", "onnx_x1024"):  # the fast params measure batches 1, 64 and 1024
        assert diff[key]["old"] > 0 and diff[key]["new"] > 0, key

    # The table a user reads: one row per headline number; in millionths the FP32 difference
    # survives DVC's default 5 decimals.
    rows = dvc(project, "metrics", "diff", BASELINE).stdout
    assert len(rows.splitlines()) <= 12 and max(map(len, rows.splitlines())) <= 160, rows
    assert float(table_row(rows, "onnx_diff_ppm")[2]) == round(old["onnx_diff_ppm"], 5) > 0


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
    assert reps == [4, 5]  # the baseline (fast params) measures 5 times
    for run in runs:
        assert set(run["metrics"]) == METRICS
        assert run["metrics"][HEADLINE]["data"]["onnx_ok"] is True
    # What did not run kept the baseline's results.
    trained = committed(project, BASELINE, "artifacts/lineage.json")
    for run in runs:
        assert run["metrics"][HEADLINE]["data"]["test_ap"] == trained["test_scores"]["average_precision"]

    rows = list(csv.reader(io.StringIO(dvc(project, "exp", "show", "--csv").stdout)))
    header, experiments = rows[0], [row for row in rows[1:] if row[0]]
    assert len(experiments) == 2
    for column in ("onnx_diff_ppm", "onnx_x1", "test_ap"):
        assert column in header, column
        for row in experiments:
            assert float(row[header.index(column)]) > 0, (column, row[0])


def queue_states(project: Path) -> dict[str, str]:
    """`dvc queue status`: {experiment name: Queued | Running | Success | Failed}."""
    lines = dvc(project, "queue", "status").stdout.splitlines()
    states = {}
    for line in lines[1:]:
        cells = line.split()
        if len(cells) >= 3 and cells[-1] in {"Queued", "Running", "Success", "Failed"}:
            states[cells[1]] = cells[-1]
    return states


def test_a_queued_grid_of_experiments_runs_in_dvc_temp_workspaces(project):
    # Two points are a grid: what is checked (each runs in its own workspace, exp show lists them) does
    # not grow with its size, and each costs a workspace and a parity run.
    # DVC runs each queued experiment in its own copy of the repo under .dvc/tmp/exps/: the stages
    # there must import that copy's onnxship, not the checkout's (which the guard refused before).
    queued = dvc(project, "exp", "run", "--queue", "-S", "parity.margin=0.01,0.02")
    assert queued.stdout.count("Queued experiment") == 2, queued.stdout
    try:
        dvc(project, "queue", "start", "--jobs", "1")
        deadline = time.monotonic() + 900
        while set((states := queue_states(project)).values()) & {"Queued", "Running"} or len(states) < 2:
            assert time.monotonic() < deadline, states
            time.sleep(3)
    finally:
        dvc(project, "queue", "stop", check=False)
    failed = [name for name, state in states.items() if state != "Success"]
    logs = "\n".join(dvc(project, "queue", "logs", name, check=False).stdout for name in failed)
    assert not failed, f"{failed} failed:\n{logs}"

    shown = json.loads(dvc(project, "exp", "show", "--json").stdout)
    baseline = next(row for row in shown if row["name"] == BASELINE)
    runs = [rev["data"] for exp in baseline["experiments"] for rev in exp["revs"]]
    margins = sorted(run["params"]["params.yaml"]["data"]["parity"]["margin"] for run in runs)
    assert margins == [0.01, 0.02]
    for run in runs:
        assert run["metrics"][HEADLINE]["data"]["onnx_ok"] is True
    # The comparison a user reads: one row per experiment, the grid's param beside the headline.
    rows = list(csv.reader(io.StringIO(dvc(project, "exp", "show", "--csv").stdout)))
    header = rows[0]
    experiments = [row for row in rows[1:] if row[header.index("Experiment")]]
    assert sorted(float(row[header.index("parity.margin")]) for row in experiments) == margins
    for row in experiments:
        assert float(row[header.index("test_ap")]) > 0 and row[header.index("serve")], row


def test_a_temp_experiment_runs_in_a_dvc_temp_workspace(project):
    result = dvc(project, "exp", "run", "--temp", "-S", "parity.margin=0.03")
    assert ran_stages(result.stdout) == ["parity", "recommend"], result.stdout + result.stderr
    shown = json.loads(dvc(project, "exp", "show", "--json").stdout)
    baseline = next(row for row in shown if row["name"] == BASELINE)
    runs = [rev["data"] for exp in baseline["experiments"] for rev in exp["revs"]]
    assert [run["params"]["params.yaml"]["data"]["parity"]["margin"] for run in runs] == [0.03]


def test_the_registered_model_downloads_with_dvc_artifacts_get_by_version_and_stage(project, tmp_path):
    # docs/dvc.md's registry example, offline: a folder remote, GTO tags, `dvc artifacts get`.
    dvc(project, "remote", "add", "-d", "local", str(tmp_path / "remote"))
    git(project, "commit", "-qam", "a DVC remote")
    dvc(project, "push")
    identity = {
        f"GIT_{who}_{what}": value
        for who in ("AUTHOR", "COMMITTER")
        for what, value in (("NAME", "t"), ("EMAIL", "t@t"))
    }
    gto = shutil.which("gto", path=env()["PATH"])
    for args in (
        ["register", "model", "--version", "v1.0.0"],
        ["assign", "model", "--version", "v1.0.0", "--stage", "prod"],
    ):
        subprocess.run([gto, *args], cwd=project, env=env(**identity), check=True, capture_output=True)
    shipped = (project / "artifacts" / "model.onnx").read_bytes()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for i, how in enumerate((["--rev", "v1.0.0"], ["--stage", "prod"])):
        dvc(elsewhere, "artifacts", "get", str(project), "model", *how, "-o", f"model{i}.onnx")
        assert (elsewhere / f"model{i}.onnx").read_bytes() == shipped, how

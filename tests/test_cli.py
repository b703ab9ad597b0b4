"""Stage scripts as a user runs them: a bad input gives one line, exit 2, and no artifact."""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


def write_inputs(tmp_path, params_text: str, csv_text: str | None) -> None:
    (tmp_path / "data").mkdir()
    if csv_text is not None:
        (tmp_path / "data" / "d.csv").write_text(csv_text)
    (tmp_path / "params.yaml").write_text(params_text)


def run_stage(stage: str, tmp_path, monkeypatch, capsys) -> tuple[int, str]:
    """Run scripts/<stage>.py as `python scripts/<stage>.py` would, in this process (fast)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / "scripts" / f"{stage}.py"), run_name="__main__")
    return exit_info.value.code, capsys.readouterr().err


def params(**data) -> str:
    base = {"path": "data/d.csv", "target": "y", "positive_label": "'p'"}
    base.update(data)
    lines = "\n".join(f"  {k}: {v}" for k, v in base.items())
    return (
        f"data:\n{lines}\ntrain:\n  candidates: [logistic_regression]\n  cv_folds: 2\n"
        "parity:\n  tolerances:\n    onnx: {max_abs_diff: 1.0e-4, min_agreement: 1.0}\n"
        "    int8: {max_abs_diff: 0.05, min_agreement: 0.99}\n"
    )


GOOD_CSV = "a,c,y\n" + "".join(f"{i},{'uv'[i % 2]},{'pq'[i % 3 == 0]}\n" for i in range(40))


@pytest.mark.parametrize(
    ("params_text", "csv_text", "message"),
    [
        (
            params().replace("cv_folds", "cv_foldz"),
            GOOD_CSV,
            "unknown key 'train.cv_foldz' (did you mean 'cv_folds'?)",
        ),
        (params(path="data/missing.csv"), GOOD_CSV, "data file data/missing.csv not found"),
        (params(target="label"), GOOD_CSV, "column 'label' from params.yaml is not in the CSV"),
        (params(positive_label="'x'"), GOOD_CSV, "positive label 'x' is not a value of 'y'"),
        (params(), "a,y\n1,p\n2,q\n3,q\n", "the minority class has 1 rows"),
        # params.yaml
        (params().replace("cv_folds: 2", "cv_folds: two"), GOOD_CSV, "'train.cv_folds': Input should be"),
        (params().replace("  target: y\n", ""), GOOD_CSV, "missing required key 'data.target'"),
        (params().replace("[logistic_regression]", "[catboost]"), GOOD_CSV, "'catboost' is neither"),
        (
            params().replace("max_abs_diff: 1.0e-4", "max_abs_diff: -1.0e-4"),
            GOOD_CSV,
            "'parity.tolerances.onnx.max_abs_diff': Input should be greater than or equal to 0",
        ),
        # the data
        (params(), None, "data file data/d.csv not found"),
        (params(), "\x00\x01\x02", "is not a text CSV file"),
        (params(), "", "is empty"),
        (params(), "a,c,y\n", "has a header but no data rows"),
        (params(), "a,a,y\n1,2,p\n", "duplicate column names ['a']"),
        (params(), GOOD_CSV.replace(",q\n", ",r\n", 3), "target 'y' must have exactly two values"),
        (params(), "a,y\n" + "".join(f"{i},p\n" for i in range(30)), "must have exactly two values, found 1"),
        (
            params(),
            "a,c,e,y\n" + "".join(f"{i},{'uv'[i % 2]},,{'pq'[i % 3 == 0]}\n" for i in range(40)),
            "columns ['e'] have no values at all",
        ),
        (params(), GOOD_CSV.replace(",", ";"), "looks like a ';'-separated file"),
        (params(numeric="[c]"), GOOD_CSV, "numeric column 'c' has text 'u' (data row 1)"),
    ],
)
def test_bad_input_gives_one_line_and_no_artifact(
    tmp_path, monkeypatch, capsys, params_text, csv_text, message
):
    write_inputs(tmp_path, params_text, csv_text)
    code, stderr = run_stage("train", tmp_path, monkeypatch, capsys)
    assert code == 2
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, stderr
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").iterdir())


def test_a_real_process_exits_2_with_one_line(tmp_path):
    write_inputs(tmp_path, params(target="label"), GOOD_CSV)
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train.py")], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: column 'label' from params.yaml is not in the CSV"]


def test_good_input_trains(tmp_path, monkeypatch, capsys):
    write_inputs(tmp_path, params(), GOOD_CSV)
    code, stderr = run_stage("train", tmp_path, monkeypatch, capsys)
    assert code == 0, stderr
    assert {p.name for p in (tmp_path / "artifacts").iterdir()} == {
        "best_model.joblib",
        "threshold.txt",
        "lineage.json",
        "test.csv",
        "calibration.csv",
        "plots",
    }
    assert {p.name for p in (tmp_path / "artifacts" / "plots").iterdir()} == {"roc.csv", "pr.csv"}


def test_unconvertible_step_fails_train_before_cv_without_writing(tmp_path, monkeypatch, capsys):
    text = params().replace(
        "  cv_folds: 2\n", "  cv_folds: 2\n  numeric_transformer: sklearn.preprocessing:SplineTransformer\n"
    )
    write_inputs(tmp_path, text, GOOD_CSV)
    code, stderr = run_stage("train", tmp_path, monkeypatch, capsys)
    assert code == 2
    last = stderr.strip().splitlines()[-1]
    assert "step 'preprocess/numeric/custom'" in last and "SplineTransformer" in last
    assert "no converter" in last and "export.converter_modules" in last and "docs/data.md" in last
    assert "Traceback" not in stderr and " fold " not in stderr  # refused before any CV fold ran
    assert not (tmp_path / "artifacts" / "best_model.joblib").exists()


def test_a_stage_run_as_dvc_yaml_runs_it_imports_the_onnxship_of_its_own_folder(tmp_path):
    # What DVC does for `dvc exp run --queue/--temp`: the stage runs in a copy of the repository
    # (.dvc/tmp/exps/...) while PYTHONPATH or an editable install points at the checkout (REPO here).
    copy = tmp_path / "exp_workspace"
    for folder in ("onnxship", "scripts"):
        shutil.copytree(REPO / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def stage(*command: str) -> str:
        result = subprocess.run([sys.executable, *command], cwd=copy, env=env, capture_output=True, text=True)
        assert result.returncode == 2, result.stderr
        return result.stderr.strip()

    # `python scripts/x.py` puts scripts/ first on sys.path: Python finds the checkout's package,
    # which the guard refuses.
    assert "must run its own onnxship package" in stage("scripts/recommend.py")
    # `python -m scripts.x` (dvc.yaml's cmd) puts the folder first: its own package runs, and gets as
    # far as the missing params.yaml.
    refusal = stage("-m", "scripts.recommend")
    assert "own onnxship" not in refusal and "params.yaml" in refusal, refusal

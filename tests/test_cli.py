"""Stage scripts as a user runs them: a bad input gives one line, exit 2, and no artifact."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


def run_train(tmp_path, params_text: str, csv_text: str | None = None):
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")
    shutil.copytree(REPO / "onnxship", tmp_path / "onnxship")
    (tmp_path / "data").mkdir()
    if csv_text is not None:
        (tmp_path / "data" / "d.csv").write_text(csv_text)
    (tmp_path / "params.yaml").write_text(params_text)
    return subprocess.run([sys.executable, "scripts/train.py"], cwd=tmp_path, capture_output=True, text=True)


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
    ],
)
def test_bad_input_gives_one_line_and_no_artifact(tmp_path, params_text, csv_text, message):
    result = run_train(tmp_path, params_text, csv_text)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, result.stderr
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").iterdir())


def test_good_input_trains(tmp_path):
    result = run_train(tmp_path, params(), GOOD_CSV)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "artifacts").iterdir()} == {
        "best_model.joblib",
        "threshold.txt",
        "lineage.json",
        "test.csv",
        "plots",
    }
    assert {p.name for p in (tmp_path / "artifacts" / "plots").iterdir()} == {"roc.csv", "pr.csv"}

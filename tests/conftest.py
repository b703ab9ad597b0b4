"""Shared fixtures: the bundled data, small fitted pipelines of every model family, and the real
pipeline run once by DVC in a temporary clone (``project``), with a snapshot of what it served."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from onnxship import data, models  # noqa: E402
from onnxship.params import DataParams, TrainParams  # noqa: E402

FAMILIES = ["logistic_regression", "random_forest", "hist_gradient_boosting", "mlp"]
CHURN = REPO / "data" / "customer_churn.csv"
CHURN_PARAMS = DataParams(path=str(CHURN), target="churn", positive_label="yes")


def small_train_params(**overrides) -> TrainParams:
    """Train params that fit in a second or two: fewer trees, iterations and folds."""
    base = {
        "candidates": FAMILIES,
        "cv_folds": 3,
        "random_forest": {"n_estimators": 30},
        "hist_gradient_boosting": {"max_iter": 40},
        "mlp": {"hidden_layer_sizes": [32], "max_iter": 200},
    }
    return TrainParams.model_validate({**base, **overrides})


@functools.cache
def churn_raw() -> pd.DataFrame:
    return data.read_csv(CHURN)


@functools.cache
def churn_xy():
    raw = churn_raw()
    roles = data.infer_roles(raw, CHURN_PARAMS)
    return data.features(raw, roles), data.target(raw, CHURN_PARAMS), roles


@functools.cache
def fitted(family: str):
    """A pipeline of ``family`` fitted on the first 2,000 churn rows (cached for the session)."""
    X, y, roles = churn_xy()
    return models.build_pipeline(family, roles, small_train_params()).fit(X.iloc[:2000], y[:2000])


@pytest.fixture
def churn():
    return churn_xy()


# --- the real pipeline in a temporary clone -------------------------------------------------------

STAGES = ["train", "export", "quantize", "parity", "benchmark", "recommend"]
# What a deployment receives (plus what tests compare it with): copied right after the first build,
# before any test edits the project.
SERVED = [
    "model.onnx",
    "onnx_features.json",
    "onnx_metadata.json",
    "test.csv",
    "best_model.joblib",
    "lineage.json",
    "threshold.txt",
]


def env() -> dict[str, str]:
    # The stages run `python`: it must be this interpreter, with its packages.
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def sh(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh(cwd, sys.executable, "-m", "dvc", *args, check=check)


def repro(cwd: Path, *args: str) -> list[str]:
    """Run `dvc repro` and return the stages that really ran (not skipped, not restored)."""
    out = dvc(cwd, "repro", *args).stdout
    return re.findall(r"Running stage '(\w+)'", out)


def edit_params(cwd: Path, change) -> None:
    yaml = YAML()  # round-trip: keeps comments and order
    path = cwd / "params.yaml"
    params = yaml.load(path)
    change(params)
    with open(path, "w") as handle:
        yaml.dump(params, handle)


def fast(params) -> None:
    params["train"]["candidates"] = ["logistic_regression", "hist_gradient_boosting"]
    params["train"]["cv_folds"] = 3
    params["train"]["hist_gradient_boosting"]["max_iter"] = 50
    params["benchmark"]["min_repetitions"] = 5
    params["benchmark"]["time_budget_s"] = 0.0
    params["benchmark"]["warmup"] = 2


def clone(root: Path, change_params, extra_files: dict[str, str] | None = None) -> Path:
    """A git repo at ``root`` holding the working tree's files, as a fresh clone would, with
    params.yaml changed by ``change_params`` and ``extra_files`` ({path: text}) added."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    for name, text in (extra_files or {}).items():
        (root / name).write_text(text)
    edit_params(root, change_params)
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"],
    ):
        sh(root, "git", *args)
    return root


@dataclass(frozen=True)
class Built:
    root: Path  # the clone, which tests may edit (and must restore)
    served: Path  # a read-only snapshot of its artifacts as first built


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Built:
    """A git repo holding the working tree's files, as a fresh clone would, with fast params,
    after a real `dvc repro`. Built once per test session and shared."""
    root = clone(tmp_path_factory.mktemp("project"), fast)
    assert repro(root) == STAGES
    served = tmp_path_factory.mktemp("served")
    for name in SERVED:
        shutil.copy2(root / "artifacts" / name, served / name)
    return Built(root=root, served=served)


@pytest.fixture
def project(built) -> Path:
    return built.root


@pytest.fixture
def served(built, tmp_path) -> Path:
    """A private copy of the served artifacts, which the test may change."""
    return Path(shutil.copytree(built.served, tmp_path / "artifacts"))


def pytest_collection_modifyitems(items) -> None:
    # Anything that needs the DVC-built clone is an end-to-end test (and is slow the first time).
    for item in items:
        if "built" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)

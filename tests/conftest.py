"""Shared fixtures: the bundled data, small fitted pipelines of every model family, the stage scripts
run once in this process on small params (``staged``, ``served``: the fast tier), and the real pipeline
run once by DVC in a temporary clone (``built``, ``project``, ``built_project``: the e2e tier)."""

from __future__ import annotations

import dataclasses
import functools
import runpy
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from onnxship.contract.encode import Encoder
from onnxship.contract.runtime import session
from onnxship.contract.spec import PROBABILITY_OUTPUT
from onnxship.core.params import DataParams, TrainParams
from onnxship.train import data, models

REPO = Path(__file__).resolve().parents[1]

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


def onnx_probabilities(model, features: dict, rows: pd.DataFrame | list[dict]) -> np.ndarray:
    """Positive-class probabilities of an exported model (ModelProto or bytes) on ``rows`` (a frame
    or records), encoded by the contract's encoder as every client does."""
    model_bytes = model if isinstance(model, bytes) else model.SerializeToString()
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else rows
    output = session(model_bytes).run([PROBABILITY_OUTPUT], Encoder(features).encode(records))[0]
    return output[:, 1].astype(np.float64)


# --- the pipeline's stages, run in this process: the fast tier's artifacts ----------------------------

STAGES = ["train", "export", "quantize", "parity", "benchmark", "recommend"]  # in dvc.yaml's order

# What a deployment receives (plus what tests compare it with): copied right after the first build,
# before any test edits the project.
SERVED = [
    "model.onnx",
    "model.int8.onnx",
    "onnx_features.json",
    "onnx_metadata.json",
    "test.csv",
    "best_model.joblib",
    "lineage.json",
    "threshold.txt",
]


@dataclass(frozen=True)
class Built:
    root: Path  # the project (params.yaml, data, artifacts), which tests may edit (and must restore)
    served: Path  # a read-only snapshot of what a deployment receives (SERVED), as first built
    outputs: Path  # a read-only snapshot of every file the stages wrote (artifacts/), as first built
    clone: Path | None = None  # ``built`` only: a copy of the whole git repo as first built (built_project)


def run_stages(root: Path, stages: Sequence[str] = tuple(STAGES)) -> None:
    """Each ``scripts/<stage>.py``'s ``main()`` in this process, in ``root`` (which holds params.yaml
    and the data), as ``dvc repro`` would run them in order, without DVC or a Python start per stage.
    A stage that raises or returns non-zero (the parity gate) fails the caller."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for stage in stages:
            main = runpy.run_path(str(REPO / "scripts" / f"{stage}.py"), run_name=f"stage_{stage}")["main"]
            assert not main(), f"scripts/{stage}.py returned non-zero in {root}"


def snapshot(root: Path, tmp_path_factory, name: str) -> Built:
    """``root`` just built, with read-only copies of its served files and of all its outputs taken
    now, before any test edits the project."""
    served = tmp_path_factory.mktemp(f"{name}_served")
    for file in SERVED:
        shutil.copy2(root / "artifacts" / file, served / file)
    outputs = tmp_path_factory.mktemp(f"{name}_outputs") / "artifacts"
    shutil.copytree(root / "artifacts", outputs)
    return Built(root=root, served=served, outputs=outputs)


def staged_params(params) -> None:
    """The e2e tier's small params (tests/dvc_project.py ``fast``), and a benchmark at 1 and 2
    threads, which tests/test_benchmark.py checks every backend process holds."""
    from tests.dvc_project import fast

    fast(params)
    params["benchmark"]["threads"] = [1, 2]


@pytest.fixture(scope="session")
def staged(tmp_path_factory) -> Built:
    """This project's params.yaml (``staged_params``) and data in a temporary folder, after every
    stage script ran there in this process: the same code and params as ``built``'s `dvc repro`, so
    the same model, contract and INT8 files, without git, DVC or a process per stage. Built once per
    test session and shared."""
    from tests.dvc_project import edit_params

    root = tmp_path_factory.mktemp("staged")
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "data", root / "data")
    edit_params(root, staged_params)
    run_stages(root)
    return snapshot(root, tmp_path_factory, "staged")


@pytest.fixture(scope="session")
def staged_v1(staged, tmp_path_factory) -> Path:
    """The served files of ``staged`` exported again as contract v1 (``export.contract_version: 1``:
    one [n, 1] graph input per column), from the same best_model.joblib: the v1 fixture every client
    must keep reading. model.int8.onnx is left out (it is v2's)."""
    from tests.dvc_project import edit_params, set_param

    root = tmp_path_factory.mktemp("staged_v1")
    shutil.copy2(staged.root / "params.yaml", root / "params.yaml")
    shutil.copytree(staged.root / "data", root / "data")
    shutil.copytree(staged.root / "artifacts", root / "artifacts")
    edit_params(root, lambda params: set_param(params, "export.contract_version", 1))
    run_stages(root, ["export"])
    served = tmp_path_factory.mktemp("staged_v1_served")
    for name in SERVED:
        if name != "model.int8.onnx":
            shutil.copy2(root / "artifacts" / name, served / name)
    return served


@pytest.fixture
def served(staged, tmp_path) -> Path:
    """A private copy of the served artifacts (built in-process, ``staged``), which the test may change."""
    return Path(shutil.copytree(staged.served, tmp_path / "artifacts"))


@pytest.fixture
def staged_project(staged, tmp_path) -> Path:
    """A private copy of the whole ``staged`` project (params.yaml, data, artifacts), in which the test
    may edit files and run stage scripts."""
    return Path(shutil.copytree(staged.root, tmp_path / "project"))


# --- the real pipeline in a temporary clone (helpers in tests/dvc_project.py) -------------------


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Built:
    """A git repo holding the working tree's files, as a fresh clone would, with fast params,
    after a real `dvc repro`. Built once per test session and shared."""
    from tests.dvc_project import fast, git_project, repro

    root = git_project(tmp_path_factory.mktemp("project"), fast)
    assert repro(root) == STAGES
    clone = tmp_path_factory.mktemp("built_project") / "project"
    shutil.copytree(root, clone, symlinks=True)  # before any test edits ``root``
    return dataclasses.replace(snapshot(root, tmp_path_factory, "built"), clone=clone)


@pytest.fixture
def project(built) -> Path:
    return built.root


@pytest.fixture(scope="session")
def built_project(built) -> Path:
    """``built``'s git repo as first built (fast params, `dvc repro` run), its results committed on
    `main`. Tests copy it (`shutil.copytree`) rather than change it: one pipeline run for all the
    e2e tier."""
    from tests.dvc_project import git

    root = built.clone
    git(root, "add", "-A")
    git(root, "commit", "-qm", "baseline results")
    return root


@dataclass(frozen=True)
class Compared:
    root: Path  # the git repo; HEAD on branch ``hidden-knob``, `main` as built_project committed it
    key: str  # the hidden knob HEAD sets ("train.<family>.<knob>")
    value: float  # its value on HEAD
    ran: list[str]  # the stages `dvc repro` ran after the change


@pytest.fixture(scope="session")
def compared_project(built_project, tmp_path_factory) -> Compared:
    """``built_project`` copied, then on a branch ``hidden-knob`` a hidden knob of the chosen family
    set under its section (params.yaml does not show the family's block), `dvc repro` run and its
    results committed: two revisions holding different models (``main`` and ``HEAD``), for the
    tests that compare them and the one that checks what the change re-ran. Read it, do not change it."""
    import json

    from ruamel.yaml import YAML

    from tests.dvc_project import edit_params, git, param, repro, set_param

    root = tmp_path_factory.mktemp("compared") / "project"
    shutil.copytree(built_project, root, symlinks=True)
    chosen = json.loads((root / "artifacts" / "lineage.json").read_text())["chosen"]["family"]
    # A knob that changes every tree: with max_iter, the speed-weighted selection may ship the same
    # smaller tree count, and DVC then rightly skips export and everything after it.
    knob, change = {
        "hist_gradient_boosting": ("learning_rate", lambda v: v * 1.5),
        "logistic_regression": ("max_iter", lambda v: v + 7),
    }[chosen]
    key = f"train.{chosen}.{knob}"
    value = change(param(YAML(typ="safe").load((root / "params.yaml").read_text()), key))
    git(root, "checkout", "-q", "-b", "hidden-knob")
    edit_params(root, lambda params: set_param(params, key, value))
    ran = repro(root)
    git(root, "commit", "-qam", f"try {key}={value}")
    return Compared(root=root, key=key, value=value, ran=ran)


def pytest_collection_modifyitems(items) -> None:
    # The e2e tier (`-m e2e`): anything that needs a DVC-built clone, and the Spark tests that start a
    # local session (a JVM: about 16 s on a quiet 2-core machine before the first job). Everything
    # else is the fast tier (`-m "not e2e"`); `python -m pytest` runs both.
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if {"built", "built_project"} & names or (item.path.name == "test_spark.py" and "session" in names):
            item.add_marker(pytest.mark.e2e)

"""Your model, not only ours: a candidate built by your own function (``module:function`` in
train.candidates) and a fitted model you already have (train.fitted_model), each run through the
stage scripts in this process (train -> export -> quantize -> parity) with every decision on every
bundled row equal between scikit-learn and ONNX; and the one-line errors for a bad spec or file."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest

from onnxship.core.errors import UserError
from onnxship.core.params import DataParams
from onnxship.train import data, factories, lineage
from onnxship.train.table import Roles
from tests.conftest import CHURN, REPO, onnx_probabilities, run_stages
from tests.dvc_project import edit_params, fast, set_param

STAGES = ["train", "export", "quantize", "parity"]


def project(root: Path, change) -> Path:
    """A project folder (params.yaml, data, plugins) with fast params changed by ``change``."""
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "plugins", root / "plugins")

    def both(params) -> None:
        fast(params)
        change(params)

    edit_params(root, both)
    return root


def every_row_agrees(root: Path) -> tuple[float, int]:
    """(max |p_sklearn - p_onnx|, flipped decisions) over every row of the bundled CSV."""
    artifacts = root / "artifacts"
    record = json.loads((artifacts / "lineage.json").read_text())
    pipeline = joblib.load(artifacts / "best_model.joblib")
    features = json.loads((artifacts / "onnx_features.json").read_text())
    metadata = json.loads((artifacts / "onnx_metadata.json").read_text())
    raw = data.read_csv(CHURN)
    roles = Roles(**record["roles"])
    column = lineage.positive_column(pipeline.classes_, record)
    assert column == metadata["positive_class_index"]
    reference = pipeline.predict_proba(data.features(raw, roles))[:, column]
    onnx = onnx_probabilities((artifacts / "model.onnx").read_bytes(), features, raw[roles.features])
    threshold = metadata["threshold"]
    flipped = int(np.sum((reference >= threshold) != (onnx >= threshold)))
    return float(np.max(np.abs(reference - onnx))), flipped


def test_a_candidate_of_your_own_ships_like_a_built_in_one(tmp_path):
    def change(params) -> None:
        set_param(params, "train.candidates", ["plugins.my_models:build"])
        set_param(params, "parity.diagnose", "always")  # the diagnosis must walk a pipeline not ours

    root = project(tmp_path, change)
    run_stages(root, STAGES)
    record = json.loads((root / "artifacts" / "lineage.json").read_text())
    assert record["chosen"]["family"] == "plugins.my_models:build"
    assert record["chosen"]["hyperparameters"]["model__C"] == 0.5
    assert record["chosen"]["hyperparameters"]["model"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert set(record["cv"]["candidates"]) == {"plugins.my_models:build"}
    # Not our encoder: export takes each column's categories from what train recorded.
    assert record["training_categories"]["international_plan"] == ["no", "yes"]
    features = json.loads((root / "artifacts" / "onnx_features.json").read_text())
    by_name = {i["name"]: i for i in features["inputs"]}
    assert by_name["international_plan"]["categories"] == ["no", "yes"]
    report = json.loads((root / "artifacts" / "parity_report.json").read_text())
    assert report["passed"] and report["backends"]["onnx"]["flipped"] == 0
    steps = [s["step"] for s in report["backends"]["onnx"]["diagnosis"]["steps"]]
    assert "preprocess/numeric/scale" in steps and "preprocess/categorical" in steps, steps
    max_diff, flipped = every_row_agrees(root)
    print(f"plugins.my_models:build on all 5,000 rows: max diff {max_diff:.2e}, {flipped} flipped")
    assert flipped == 0 and max_diff <= 1e-4


def test_selection_weighs_a_candidate_of_your_own_against_the_built_in_ones(tmp_path):
    candidates = ["logistic_regression", "plugins.my_models:build"]
    root = project(tmp_path, lambda p: set_param(p, "train.candidates", candidates))
    run_stages(root, ["train"])
    record = json.loads((root / "artifacts" / "lineage.json").read_text())
    assert set(record["cv"]["candidates"]) == set(candidates)
    # Both are linear models: their weights are the cost, so the rules can compare them.
    assert record["selection"]["family"]["choice"] in candidates


def labelled_model(tmp_path: Path, labels: str) -> Path:
    """A pipeline of plugins.my_models fitted on 3,000 churn rows with ``labels`` as its classes
    ("raw": the CSV's 'yes'/'no'; "bool": y == positive), saved with joblib.dump."""
    from plugins.my_models import build  # the tests run from the project root

    raw = data.read_csv(CHURN)
    dp = DataParams(path=str(CHURN), target="churn", positive_label="yes")
    roles = data.infer_roles(raw, dp)
    X = data.features(raw, roles)
    y = raw["churn"].to_numpy() if labels == "raw" else raw["churn"].to_numpy() == "yes"
    model = build(numeric=roles.numeric, categorical=roles.categorical).fit(X.iloc[:3000], y[:3000])
    (tmp_path / "models").mkdir()
    joblib.dump(model, tmp_path / "models" / "model.joblib")
    return tmp_path / "models" / "model.joblib"


@pytest.mark.parametrize("labels", ["raw", "bool"])
def test_a_fitted_model_you_already_have_ships_with_its_own_labels(tmp_path, labels):
    root = project(tmp_path, lambda p: set_param(p, "train.fitted_model", "models/model.joblib"))
    source = labelled_model(root, labels)
    # Once through the benchmark and recommend too: the scikit-learn backend reads the "yes" column.
    run_stages(root, STAGES + (["benchmark", "recommend"] if labels == "raw" else []))
    artifacts = root / "artifacts"
    record = json.loads((artifacts / "lineage.json").read_text())
    chosen = record["chosen"]
    assert chosen["family"] == "fitted_model" and chosen["cross_validated"] is False
    assert chosen["positive_class"] == ("yes" if labels == "raw" else True)
    assert chosen["source"] == "models/model.joblib"
    assert record["model_sha256"] == chosen["source_sha256"] == lineage.sha256_file(source)
    assert (artifacts / "best_model.joblib").read_bytes() == source.read_bytes()
    assert "skipped" in record["cv"] and record["threshold"]["tuned_on"].startswith("test split")
    metadata = json.loads((artifacts / "onnx_metadata.json").read_text())
    assert metadata["class_order"][metadata["positive_class_index"]] == "yes"
    assert metadata["family"] == "fitted_model"
    if labels == "raw":
        benchmark = json.loads((artifacts / "benchmark.json").read_text())
        assert benchmark["model_family"] == "fitted_model" and "sklearn" in benchmark["backends"]
        recommendation = json.loads((artifacts / "recommendation.json").read_text())
        assert recommendation["model_selection"]["rule"].startswith("none: train.fitted_model")
    max_diff, flipped = every_row_agrees(root)
    print(f"fitted model ({labels} labels) on all 5,000 rows: max diff {max_diff:.2e}, {flipped} flipped")
    assert flipped == 0 and max_diff <= 1e-4


def test_a_threshold_from_params_is_taken_as_given(tmp_path):
    def change(params) -> None:
        set_param(params, "train.fitted_model", "models/model.joblib")
        set_param(params, "train.threshold", 0.3)

    root = project(tmp_path, change)
    labelled_model(root, "raw")
    run_stages(root, ["train", "export"])
    record = json.loads((root / "artifacts" / "lineage.json").read_text())
    assert record["threshold"]["value"] == 0.3 and "given" in record["threshold"]["source"]
    assert (root / "artifacts" / "threshold.txt").read_text() == "0.3\n"
    assert json.loads((root / "artifacts" / "onnx_metadata.json").read_text())["threshold"] == 0.3


# --- clear errors ---------------------------------------------------------------------------------

ROLES = Roles(numeric=["a"], categorical=["b"], id_like=[])


@pytest.fixture
def bad_plugins(tmp_path, monkeypatch):
    """A module ``bad_plugins_mod`` importable from ``tmp_path`` with factories that go wrong."""
    (tmp_path / "bad_plugins_mod.py").write_text(
        textwrap.dedent(
            """
            from sklearn.preprocessing import StandardScaler
            from sklearn.linear_model import LinearRegression

            NOT_A_FUNCTION = 3

            def regressor(numeric, categorical):
                return LinearRegression()

            def scaler(numeric, categorical):
                return StandardScaler()

            def no_keywords():
                return None
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("bad_plugins_mod", None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:build", "train.candidates entry 'no_such_module_xyz:build' cannot be imported"),
        ("bad_plugins_mod:missing", "names nothing, not a function"),
        ("bad_plugins_mod:NOT_A_FUNCTION", "names a int, not a function"),
        ("os:system", "names a builtin_function_or_method, not a function"),
        ("bad_plugins_mod:regressor", "returned a sklearn.linear_model._base.LinearRegression, not a scikit"),
        ("bad_plugins_mod:scaler", "not a scikit-learn classifier with predict_proba"),
        ("bad_plugins_mod:no_keywords", "failed when called with numeric= and categorical="),
    ],
)
def test_a_bad_factory_is_refused_in_one_line_naming_the_entry(bad_plugins, spec, message):
    with pytest.raises(UserError) as caught:
        factories.build(spec, ROLES)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_fitted_model_is_refused_in_one_line(tmp_path):
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(UserError, match="not found"):
        factories.load_fitted(tmp_path / "none.joblib")
    joblib.dump(StandardScaler(), tmp_path / "scaler.joblib")
    with pytest.raises(UserError, match="not a scikit-learn classifier"):
        factories.load_fitted(tmp_path / "scaler.joblib")
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="cannot be loaded"):
        factories.load_fitted(tmp_path / "junk.joblib")
    with pytest.raises(UserError, match="none of them the positive label"):
        factories.positive_class(np.array(["a", "b"]), "yes", "m.joblib")
    assert factories.positive_class(np.array([0, 1]), "yes", "m.joblib") == 1
    assert factories.positive_class(np.array([3, 7]), 7, "m.joblib") == 7


def test_json_params_names_objects_without_a_memory_address():
    from sklearn.preprocessing import FunctionTransformer

    from plugins.my_models import build

    params = factories.json_params(build(numeric=["a"], categorical=["b"]))
    text = json.dumps(params)
    assert "0x" not in text and params["model__max_iter"] == 2000
    assert factories.json_params(FunctionTransformer(np.log1p))["func"] == "numpy.log1p"


def test_a_threshold_from_params_also_holds_for_trained_candidates():
    from onnxship.train.run import train
    from tests.conftest import CHURN_PARAMS, churn_raw, small_train_params

    result = train(
        churn_raw(), CHURN_PARAMS, small_train_params(candidates=["logistic_regression"], threshold=0.25)
    )
    assert result.threshold == 0.25 and result.lineage["threshold"]["value"] == 0.25
    assert result.lineage["threshold"]["source"] == "train.threshold (given, not tuned)"


def test_a_stage_puts_the_project_root_first_on_sys_path(tmp_path, monkeypatch):
    from onnxship.core.stage import project_on_path

    monkeypatch.setattr(sys, "path", ["/somewhere/scripts", *sys.path])
    project_on_path(tmp_path)
    assert sys.path[0] == str(tmp_path.resolve())
    project_on_path(tmp_path)  # once only
    assert sys.path.count(str(tmp_path.resolve())) == 1

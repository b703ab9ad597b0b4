import pytest
from ruamel.yaml import YAML

from onnxship.core.errors import UserError
from onnxship.core.params import load_params, parse_params
from tests.conftest import REPO


def bundled() -> dict:
    return YAML(typ="safe", pure=True).load((REPO / "params.yaml").read_text())


def test_bundled_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.data.positive_label == "yes"
    assert params.train.candidates == [
        "logistic_regression",
        "random_forest",
        "hist_gradient_boosting",
        "mlp",
    ]


def test_unquoted_yes_is_a_string_as_dvc_reads_it(tmp_path):
    text = (REPO / "params.yaml").read_text().replace('positive_label: "yes"', "positive_label: yes")
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml").data.positive_label == "yes"


def _error(raw: dict) -> str:
    with pytest.raises(UserError) as info:
        parse_params(raw)
    return str(info.value)


def test_unknown_key_suggests_the_close_one():
    raw = bundled()
    raw["train"]["random_forest"]["n_estimatorz"] = raw["train"]["random_forest"].pop("n_estimators")
    message = _error(raw)
    assert "unknown key 'train.random_forest.n_estimatorz'" in message
    assert "did you mean 'n_estimators'" in message


def test_missing_required_key_is_named():
    raw = bundled()
    del raw["data"]["target"]
    assert "missing required key 'data.target'" in _error(raw)


def test_wrong_type_is_named():
    raw = bundled()
    raw["train"]["cv_folds"] = "five"
    assert "'train.cv_folds'" in _error(raw)


def test_unknown_family_is_refused():
    raw = bundled()
    raw["train"]["candidates"] = ["xgboost"]
    message = _error(raw)
    assert "train.candidates" in message and "xgboost" in message


def test_negative_tolerance_is_refused():
    raw = bundled()
    raw["parity"]["tolerances"]["onnx"]["max_abs_diff"] = -1e-4
    assert "parity.tolerances.onnx.max_abs_diff" in _error(raw)


def test_duplicate_candidate_is_refused():
    raw = bundled()
    raw["train"]["candidates"] = ["mlp", "mlp"]
    assert "twice" in _error(raw)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("data: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")

import json

import pytest
from pydantic import BaseModel
from ruamel.yaml import YAML

from onnxship.core.errors import UserError
from onnxship.core.params import Params, load_params, parse_params
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
    raw["train"]["random_forest"] = {"n_estimatorz": 100}  # a hidden section, set by the user
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
    raw["train"]["candidates"] = ["catboost"]
    message = _error(raw)
    assert "train.candidates" in message and "catboost" in message


def test_negative_tolerance_is_refused():
    raw = bundled()
    raw["parity"]["tolerances"]["onnx"]["max_abs_diff"] = -1e-4
    assert "parity.tolerances.onnx.max_abs_diff" in _error(raw)


def test_duplicate_candidate_is_refused():
    raw = bundled()
    raw["train"]["candidates"] = ["mlp", "mlp"]
    assert "twice" in _error(raw)


def test_a_validators_message_is_shown_as_written():
    # The validator's own words: no pydantic "Value error, " prefix, and never the whole section the
    # rule was checked on as "(got {...})".
    raw = bundled()
    raw["train"]["candidates"] = ["mlp", "mlp"]
    assert _error(raw) == "params.yaml: train.candidates lists a family twice: ['mlp', 'mlp']"
    raw = bundled()
    raw["data"]["positive_label"] = True
    assert _error(raw) == (
        "params.yaml: 'data.positive_label': the unquoted YAML boolean true is not a label: quote the "
        'target value as written in the CSV, e.g. positive_label: "true"'
    )
    # A section of the wrong type is named, not dumped.
    raw = bundled()
    raw["train"] = ["mlp"]
    message = "params.yaml: 'train': Input should be a valid dictionary or instance of TrainParams"
    assert _error(raw) == message


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("data: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


# --- two tiers: what params.yaml shows, and the hidden knobs ------------------------------------


def leaf_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        keys += leaf_keys(value, f"{prefix}{key}.") if isinstance(value, dict) and value else [prefix + key]
    return keys


def test_params_yaml_shows_at_most_30_keys_each_with_a_comment():
    doc = YAML().load((REPO / "params.yaml").read_text())  # round-trip: keeps comments and lines
    lines = (REPO / "params.yaml").read_text().splitlines()
    keys = leaf_keys(doc)
    assert len(keys) <= 30, keys
    for key in keys:
        # Commented on its own line, or (a block of alike keys) on its parent's line.
        *parents, last = key.split(".")
        node, parent_line = doc, None
        for part in parents:
            parent_line = node.lc.key(part)[0]
            node = node[part]
        commented = [node.lc.key(last)[0], parent_line]
        assert any(n is not None and "#" in lines[n] for n in commented), key


def test_every_knob_has_a_description_and_every_section_a_docstring():
    def walk(model: type[BaseModel], prefix: str) -> None:
        assert model.__doc__, model.__name__
        for name, field in model.model_fields.items():
            assert field.description and len(field.description) > 10, f"{prefix}{name}"
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                walk(field.annotation, f"{prefix}{name}.")

    walk(Params, "")


# The knobs params.yaml no longer shows, with the values the full file gave before they were hidden:
# the artifacts stay byte-identical only if these defaults do not move.
HIDDEN = {
    "data.max_columns": 10000, "data.max_category_chars": 1000,
    "train.test_max_rows": 100000, "train.refit_threads": 1, "train.early_stopping_min_rows": 10000,
    "train.screen": {"rows": 20000, "keep": 2},
    "train.max_categories": 100, "train.min_frequency": 1, "train.calibration_rows": 2000,
    "train.numeric_transformer": None,
    "train.logistic_regression": {"C": 1.0, "max_iter": 1000, "class_weight": None},
    "train.random_forest": {
        "n_estimators": 200, "max_depth": None, "min_samples_leaf": 1, "class_weight": None,
        "max_samples": 20000,
    },
    "train.hist_gradient_boosting": {
        "learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 31, "min_samples_leaf": 20,
        "l2_regularization": 0.0, "class_weight": None, "early_stopping": "auto",
        "validation_fraction": 0.1, "n_iter_no_change": 10,
    },
    "train.mlp": {
        "hidden_layer_sizes": [100], "alpha": 0.0001, "learning_rate_init": 0.001, "max_iter": 300,
        "early_stopping": "auto", "validation_fraction": 0.1, "n_iter_no_change": 10,
    },
    "train.lightgbm": {
        "n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31, "min_child_samples": 20,
        "reg_lambda": 0.0, "class_weight": None,
    },
    "train.xgboost": {
        "n_estimators": 100, "learning_rate": 0.3, "max_depth": 6, "min_child_weight": 1.0,
        "reg_lambda": 1.0, "scale_pos_weight": 1.0,
    },
    "train.selection": {
        "prefer_cheaper": True, "noise_sigmas": 1.0, "max_score_loss": 0.005,
        "tree_counts": [25, 50, 75, 100, 150, 200],
    },
    "export.linear_as_matmul": False, "export.converter_modules": [],
    "quantize.weight_type": "QUInt8", "quantize.per_channel": False, "quantize.reduce_range": "auto",
    "quantize.split_blocks": True, "quantize.exclude_search": True, "quantize.search_headroom": 0.5,
    "parity.max_rows": 20000, "parity.edge_rows": True, "parity.max_rows_listed": 20,
    "parity.diagnose": "on_failure",
    "benchmark.warmup": 20, "benchmark.min_repetitions": 50, "benchmark.time_budget_s": 0.5,
}  # fmt: skip


def test_hidden_defaults_are_what_the_full_file_gave():
    dumped = load_params(REPO / "params.yaml").model_dump()
    shown = bundled()
    for dotted, expected in HIDDEN.items():
        value, given = dumped, shown
        for part in dotted.split("."):
            value, given = value[part], given.get(part, {})
        assert value == expected and type(value) is type(expected), dotted
        assert given == {}, f"{dotted} is shown in params.yaml"


def test_a_hidden_knob_set_in_its_section_is_read_and_the_rest_keep_their_defaults():
    raw = bundled()
    raw["train"]["selection"] = {"noise_sigmas": 2.0}
    raw["quantize"]["search_headroom"] = 0.25
    params = parse_params(raw)
    assert params.train.selection.noise_sigmas == 2.0
    assert params.train.selection.max_score_loss == 0.005
    assert params.quantize.search_headroom == 0.25 and params.quantize.mode == "dynamic"


def test_only_data_and_train_are_required():
    params = parse_params({"data": bundled()["data"], "train": {"candidates": ["mlp"]}})
    assert params.parity.tolerances.int8.max_abs_diff == 0.1
    assert params.recommend.serving_batch_size in params.benchmark.batch_sizes


def test_a_partial_tolerance_keeps_the_other_value():
    raw = bundled()
    raw["parity"]["tolerances"] = {"onnx": {"max_abs_diff": 2e-4}}
    tolerances = parse_params(raw).parity.tolerances
    assert (tolerances.onnx.max_abs_diff, tolerances.onnx.min_agreement) == (2e-4, 1.0)
    assert (tolerances.int8.max_abs_diff, tolerances.int8.min_agreement) == (0.1, 0.995)
    raw["parity"]["tolerances"] = {"onnx": {"max_abs_dif": 2e-4}}
    assert "unknown key 'parity.tolerances.onnx.max_abs_dif'" in _error(raw)


# --- rules that span sections: checked at load, before any stage works ---------------------------


def test_serving_batch_size_must_be_one_of_the_benchmarked_sizes(tmp_path):
    raw = bundled()
    raw["recommend"]["serving_batch_size"] = 7
    message = _error(raw)
    assert message == (
        "params.yaml: recommend.serving_batch_size 7 is not one of benchmark.batch_sizes [1, 64, 1024]: "
        "add 7 to benchmark.batch_sizes, or serve one of those sizes"
    )
    # The other way round: dropping the served size from the benchmark.
    raw = bundled()
    raw["benchmark"]["batch_sizes"] = [64, 1024]
    assert "recommend.serving_batch_size 1 is not one of benchmark.batch_sizes [64, 1024]" in _error(raw)
    # From the file, as every stage loads it: refused before any stage reads its own section.
    text = (REPO / "params.yaml").read_text().replace("batch_sizes: [1, 64, 1024]", "batch_sizes: [64]")
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(UserError, match=r"^params.yaml: recommend.serving_batch_size 1 .*\n?$"):
        load_params(tmp_path / "params.yaml")
    raw = bundled()
    raw["benchmark"]["batch_sizes"] = [1, 7]
    raw["recommend"]["serving_batch_size"] = 7
    assert parse_params(raw).recommend.serving_batch_size == 7


def test_a_bad_key_is_named_before_the_cross_section_rule():
    raw = bundled()
    raw["recommend"]["serving_batch_size"] = 7
    raw["benchmark"]["warmup"] = -1
    assert "'benchmark.warmup'" in _error(raw)


# --- dvc.yaml and docs/params.md follow the schema ------------------------------------------------


def test_every_dvc_params_entry_names_a_key_params_yaml_gives():
    # DVC refuses to run a stage whose `params:` names a key params.yaml does not give (a hidden
    # knob): such a key must stay in params.yaml, or the stage must list its whole section.
    doc = bundled()
    stages = YAML(typ="safe", pure=True).load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for entry in stage.get("params", []):
            node = doc
            for part in entry.split("."):
                assert isinstance(node, dict) and part in node, f"stage {name}: {entry} is not in params.yaml"
                node = node[part]


def test_docs_params_md_is_up_to_date_and_lists_every_knob():
    from tools.params_doc import leaves, render

    text = (REPO / "docs" / "params.md").read_text()
    assert text == render(), "docs/params.md is out of date: run python -m tools.params_doc"
    for row in leaves(Params, None):
        assert f"| `{row['key']}` |" in text
    assert "| `train.selection.noise_sigmas` | number >= 0 | `1.0` | no | train |" in text
    assert "| `parity.max_edge_rows` | integer >= 1 | `400` | yes | quantize, parity |" in text
    assert json.dumps([1, 64, 1024]) in text


# --- real DVC: which stages a hidden knob invalidates -------------------------------------------


@pytest.mark.e2e
def test_a_hidden_knob_reruns_exactly_the_stages_that_read_it(tmp_path):
    """Real DVC on the real params.yaml and dvc.yaml `params:` lists, with stand-in commands (what a
    stage computes does not matter to which stages a params change invalidates): a few seconds."""
    from tests.dvc_project import dvc, edit_params, git

    stages = YAML(typ="safe", pure=True).load((REPO / "dvc.yaml").read_text())["stages"]
    pipeline = {
        name: {"cmd": f"echo {name} > {name}.out", "params": stage["params"], "outs": [f"{name}.out"]}
        for name, stage in stages.items()
    }
    with open(tmp_path / "dvc.yaml", "w") as handle:
        YAML().dump({"stages": pipeline}, handle)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    git(tmp_path, "init", "-q")
    dvc(tmp_path, "init", "-q")
    dvc(tmp_path, "repro")

    def invalidated(change) -> set[str]:
        before = (tmp_path / "params.yaml").read_text()
        edit_params(tmp_path, change)
        status = json.loads(dvc(tmp_path, "status", "--json").stdout)
        (tmp_path / "params.yaml").write_text(before)
        return set(status)

    assert invalidated(lambda p: None) == set()
    assert invalidated(lambda p: p["train"].__setitem__("selection", {"noise_sigmas": 2.0})) == {"train"}
    assert invalidated(lambda p: p["quantize"].__setitem__("search_headroom", 0.25)) == {"quantize"}
    assert invalidated(lambda p: p["parity"].__setitem__("max_rows", 500)) == {"parity"}
    # A key quantize reads from parity's section re-runs both (parity.max_rows above: parity alone).
    assert invalidated(lambda p: p["parity"].__setitem__("max_edge_rows", 100)) == {"quantize", "parity"}
    # Why those keys stay in params.yaml: DVC refuses a listed key the file does not give.
    edit_params(tmp_path, lambda p: p["parity"].pop("max_edge_rows"))
    result = dvc(tmp_path, "repro", check=False)
    assert result.returncode != 0
    assert "Parameters 'parity.max_edge_rows' are missing from 'params.yaml'" in result.stdout + result.stderr

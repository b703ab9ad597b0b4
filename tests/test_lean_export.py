"""Lean graphs: tree families get one category-code lookup per column, and graph.simplify removes
the slicing and concatenating skl2onnx adds, with the same outputs to the last bit."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper

from onnxship.contract.runtime import session
from onnxship.convert import export, graph
from onnxship.core.errors import UserError
from onnxship.core.params import DataParams
from onnxship.train import data, models
from onnxship.train.transformers import OTHER_CATEGORY, CategoryCodes
from tests.conftest import churn_xy, fitted, small_train_params
from tests.datagen import make_dataset
from tests.test_transformers import gate

TRICKY = ["", "__missing__", OTHER_CATEGORY, "never seen", "KS ", "ks", "NA", "\x00", "é"]


def categorical_chain(pipeline):
    return pipeline.named_steps["preprocess"].named_transformers_["categorical"]


def assert_table_equals_chain(pipeline, frame: pd.DataFrame, columns: list[str]) -> None:
    chain = categorical_chain(pipeline)
    codes = CategoryCodes.from_steps(chain, columns).fit(None)
    probe = pd.concat([frame[columns], pd.DataFrame({c: TRICKY for c in columns})], ignore_index=True).astype(
        object
    )
    np.testing.assert_array_equal(codes.transform(probe), chain.transform(probe))


def test_tree_families_get_codes_and_the_others_one_hot():
    for family, encoder in models.CATEGORICAL_ENCODING.items():
        step = categorical_chain(fitted(family)).named_steps["encode"]
        assert type(step).__name__ == {"onehot": "OneHotEncoder", "ordinal": "OrdinalEncoder"}[encoder]


@pytest.mark.parametrize("max_categories, min_frequency", [(100, 1), (50, 1), (100, 100_000)])
def test_code_table_equals_the_fitted_chain_on_every_string(max_categories, min_frequency):
    # (100, 1): nothing grouped, unseen levels get the unknown code; (50, 1): "product" grouped,
    # unseen levels become "__other__"; (100, 100000): no level kept, everything is "__other__".
    frame = make_dataset(2000, seed=3).astype(str).replace("nan", "")
    params = DataParams(path="x.csv", target="status", positive_label="churned")
    roles = data.infer_roles(frame, params)
    train_params = small_train_params(max_categories=max_categories, min_frequency=min_frequency)
    pipeline = models.build_pipeline("hist_gradient_boosting", roles, train_params)
    pipeline.fit(data.features(frame.iloc[:1500], roles), data.target(frame.iloc[:1500], params))
    assert_table_equals_chain(pipeline, data.features(frame, roles), roles.categorical)


def test_churn_code_table_equals_the_chain_and_unseen_gets_the_unknown_code():
    X, _, roles = churn_xy()
    pipeline = fitted("random_forest")
    assert_table_equals_chain(pipeline, X, roles.categorical)
    codes = CategoryCodes.from_steps(categorical_chain(pipeline), roles.categorical)
    assert all(default == models.UNKNOWN_CODE for _, _, default in codes.tables)


@pytest.mark.parametrize("family", ["random_forest", "hist_gradient_boosting"])
def test_tree_graph_is_one_lookup_per_categorical_input(family):
    _, _, roles = churn_xy()
    model = export.convert(fitted(family), roles, 17)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("LabelEncoder") == len(roles.categorical)
    assert not {"Slice", "ArrayFeatureExtractor", "Where", "Cast", "Reshape"} & set(ops)
    lookups = [n for n in model.graph.node if n.op_type == "LabelEncoder"]
    assert [n.input[0] for n in lookups] == roles.categorical  # straight from the graph inputs
    # Imputed numbers and codes are never NaN: the trees carry no missing-value flags.
    tree = next(n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier")
    tracks = next(a for a in tree.attribute if a.name == "nodes_missing_value_tracks_true")
    assert set(tracks.ints) == {0}


def test_missing_value_flags_stay_when_nan_can_reach_the_trees():
    # A numeric transformer after the imputer could output NaN: the flags are kept.
    _, _, roles = churn_xy()
    X, y, _ = churn_xy()
    train_params = small_train_params(numeric_transformer="plugins.clip:QuantileClipper")
    pipeline = models.build_pipeline("hist_gradient_boosting", roles, train_params).fit(X[:1500], y[:1500])
    model = export.convert(pipeline, roles, 17, converter_modules=("plugins.clip",))
    tree = next(n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier")
    tracks = next(a for a in tree.attribute if a.name == "nodes_missing_value_tracks_true")
    assert 1 in set(tracks.ints)


def test_lean_export_leaves_the_fitted_pipeline_alone():
    _, _, roles = churn_xy()
    pipeline = fitted("hist_gradient_boosting")
    export.convert(pipeline, roles, 17)
    assert type(categorical_chain(pipeline).named_steps["encode"]).__name__ == "OrdinalEncoder"


def test_grouped_tree_model_passes_the_gate_with_all_levels_other():
    frame = make_dataset(1500, seed=2).astype(str).replace("nan", "")
    params = DataParams(path="x.csv", target="status", positive_label="churned")
    roles = data.infer_roles(frame, params)
    train_params = small_train_params(min_frequency=100_000)
    pipeline = models.build_pipeline("hist_gradient_boosting", roles, train_params)
    pipeline.fit(data.features(frame.iloc[:1000], roles), data.target(frame.iloc[:1000], params))
    report = gate(pipeline, frame.iloc[1000:].reset_index(drop=True), roles)
    assert report["passed"], report["backends"]["onnx"]["reasons"]


def _slicing_graph() -> onnx.ModelProto:
    """a, b: [n, 1] inputs; Concat -> Slice column 1 -> Concat with a Concat(a, b) -> Mul by 2."""
    ints = lambda name, v: helper.make_tensor(name, TensorProto.INT64, [1], [v])  # noqa: E731
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["ab"], axis=1),
        helper.make_node("Slice", ["ab", "one", "two", "one"], ["b_again"]),
        helper.make_node("Concat", ["a", "b"], ["inner"], axis=1),
        helper.make_node("Concat", ["b_again", "inner"], ["outer"], axis=1),
        helper.make_node("Identity", ["ab"], ["unused"]),
        helper.make_node("Mul", ["outer", "two_f"], ["y"]),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [ints("one", 1), ints("two", 2), helper.make_tensor("two_f", TensorProto.FLOAT, [], [2.0])],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_simplify_reads_columns_from_inputs_merges_concats_and_drops_dead_nodes(tmp_path):
    before = _slicing_graph()
    after = graph.simplify(_slicing_graph())
    onnx.checker.check_model(after, full_check=True)
    assert [n.op_type for n in after.graph.node] == ["Concat", "Mul"]
    assert list(after.graph.node[0].input) == ["b", "a", "b"]
    assert {i.name for i in after.graph.initializer} == {"two_f"}
    feeds = {"a": np.array([[1.5], [-2.0]], np.float32), "b": np.array([[3.0], [np.nan]], np.float32)}
    outputs = [session(m.SerializeToString()).run(None, feeds)[0] for m in (before, after)]
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_native_categorical_boosting_is_refused_with_the_upstream_issue():
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y, roles = churn_xy()
    pipeline = fitted("hist_gradient_boosting")
    codes = pipeline[:-1].transform(X.iloc[:2000])
    native = HistGradientBoostingClassifier(max_iter=5, categorical_features=[len(roles.numeric)])
    pipeline = type(pipeline)([*pipeline.steps[:-1], ("model", native.fit(codes, y[:2000]))])
    with pytest.raises(UserError, match="sklearn-onnx#1051"):
        export.convert(pipeline, roles, 17)

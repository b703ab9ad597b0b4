"""The converters onnxship adds where skl2onnx 1.20 has none or a wrong one (onnxship/convert/:
onehot, voting, ufuncs, neighbors, isotonic, imputer, discriminant), each against scikit-learn on
small inline data, and the step naming of onnxship/convert/support.py (tests/test_user_pipelines.py
runs them on real data)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import RandomForestClassifier, StackingClassifier, VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier

from onnxship.contract.runtime import session
from onnxship.convert import converters, export, support
from onnxship.core.errors import UserError
from onnxship.train.table import Roles

converters.register_builtin()

# Three string columns; in the first, "a"/"b" are frequent and the rest rare; in the second the
# first level in sorted order ("a0") is rare, so drop="first" drops the infrequent group.
TRAIN = np.array(
    [["a", "b0", "x"]] * 9 + [["b", "b1", "y"]] * 7 + [["c", "a0", "x"], ["d", "b0", "y"], ["e", "b1", "x"]],
    dtype=object,
)
PROBE = np.array([["zz", "a0", "x"], ["c", "new", "y"], ["a", "b1", "zz"], ["e", "a0", "x"]], dtype=object)


def run(model, feeds: dict) -> list[np.ndarray]:
    return session(model.SerializeToString()).run(None, feeds)


def sklearn_transform(encoder, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unknown levels, on purpose
        return encoder.transform(X)


@pytest.mark.parametrize("limit", [{"max_categories": 2}, {"min_frequency": 3}])
@pytest.mark.parametrize("handle_unknown", ["infrequent_if_exist", "ignore", "warn"])
@pytest.mark.parametrize("drop", [None, "first", "if_binary"])
def test_infrequent_onehot_matches_sklearn_on_known_and_unknown_levels(limit, handle_unknown, drop):
    encoder = OneHotEncoder(handle_unknown=handle_unknown, drop=drop, sparse_output=False, **limit).fit(TRAIN)
    model = to_onnx(encoder, initial_types=[("x", StringTensorType([None, 3]))], target_opset=17)
    X = np.vstack([TRAIN, PROBE])
    np.testing.assert_array_equal(run(model, {"x": X})[0], sklearn_transform(encoder, X))


def test_infrequent_onehot_on_separate_inputs_and_numbers_with_a_nan_level():
    numbers = np.array([[1.0], [1.0], [1.0], [2.0], [2.0], [2.0], [3.0], [np.nan], [np.nan], [np.nan]])
    encoder = OneHotEncoder(max_categories=3, handle_unknown="infrequent_if_exist", sparse_output=False)
    encoder.fit(numbers.astype(np.float32))
    model = to_onnx(encoder, initial_types=[("n", FloatTensorType([None, 1]))], target_opset=17)
    probe = np.array([[1.0], [3.0], [np.nan], [7.0], [2.0]], dtype=np.float32)
    np.testing.assert_array_equal(run(model, {"n": probe})[0], sklearn_transform(encoder, probe))
    # Two graph inputs handed to one encoder (skl2onnx passes them side by side).
    strings = OneHotEncoder(min_frequency=3, handle_unknown="infrequent_if_exist", sparse_output=False)
    strings.fit(TRAIN[:, :2])
    types = [("a", StringTensorType([None, 1])), ("b", StringTensorType([None, 1]))]
    model = to_onnx(strings, initial_types=types, target_opset=17)
    X = np.vstack([TRAIN, PROBE])[:, :2]
    got = run(model, {"a": X[:, :1], "b": X[:, 1:]})[0]
    np.testing.assert_array_equal(got, sklearn_transform(strings, X))


def test_plain_onehot_still_goes_to_skl2onnx_unchanged():
    encoder = OneHotEncoder(handle_unknown="ignore").fit(TRAIN)
    model = to_onnx(encoder, initial_types=[("x", StringTensorType([None, 3]))], target_opset=17)
    assert "OneHotEncoder" in {n.op_type for n in model.graph.node}  # skl2onnx's ai.onnx.ml op


def test_most_frequent_imputer_on_strings_is_the_identity():
    # Strings hold no NaN: a missing category in the model input frame is "", which stays "".
    imputer = SimpleImputer(strategy="most_frequent").fit(TRAIN)
    model = to_onnx(imputer, initial_types=[("x", StringTensorType([None, 3]))], target_opset=17)
    X = np.vstack([TRAIN, PROBE, [["", "", "x"]]])
    np.testing.assert_array_equal(run(model, {"x": X})[0], imputer.transform(X))


EDGES = np.array([[0.0, -1.0, -0.5, 1e-8, 88.0, 100.0, np.nan, -np.inf, np.inf, 3e38, -2.0]], np.float32).T


@pytest.mark.parametrize("func", [np.log1p, np.expm1, np.sqrt, np.abs, np.exp, np.log])
def test_ufunc_gives_what_numpy_gives_on_float32_edges(func):
    transformer = FunctionTransformer(func, inverse_func=np.exp).fit(EDGES)
    model = to_onnx(transformer, initial_types=[("x", FloatTensorType([None, 1]))], target_opset=17)
    with np.errstate(all="ignore"):
        expected = transformer.transform(EDGES)
    got = run(model, {"x": EDGES})[0]
    assert got.dtype == expected.dtype == np.float32
    # Same NaN and infinities; finite values to float32 precision (log1p/expm1 within 6e-8 near 0).
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, equal_nan=True)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(got) * np.sign(got), np.isinf(expected) * np.sign(expected))


@pytest.mark.parametrize(
    ("transformer", "reason"),
    [
        (FunctionTransformer(lambda x: x + 1), "func <lambda> has no ONNX equivalent"),
        (FunctionTransformer(np.square), "func square has no ONNX equivalent"),
        (FunctionTransformer(np.log1p, kw_args={"out": None}), "kw_args"),
    ],
)
def test_other_functions_are_refused_by_name(transformer, reason):
    pipeline = Pipeline([("log", transformer), ("model", LogisticRegression())])
    with pytest.raises(UserError) as info:
        support.check_convertible(pipeline, "mine")
    message = str(info.value)
    assert message.startswith("train.candidates 'mine': step 'log' (sklearn.preprocessing.")
    assert reason in message and "docs/data.md" in message


def numeric_table(rows: int = 300):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(rows, 3)).astype(np.float32), columns=["a", "b", "c"])
    y = (X["a"] + 0.5 * X["b"] ** 2 + rng.normal(scale=0.5, size=rows) > 0.5).astype(int).to_numpy()
    return X, y, Roles(numeric=["a", "b", "c"], categorical=[], id_like=[])


def probabilities(model, X: pd.DataFrame) -> np.ndarray:
    return run(model, {c: X[[c]].to_numpy() for c in X.columns})[1][:, 1]


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(),  # a bare classifier: one graph input per column, joined for it
        VotingClassifier(
            [
                ("linear", make_pipeline(StandardScaler(), LogisticRegression())),
                ("tree", DecisionTreeClassifier()),
            ],
            voting="soft",
        ),
        LinearDiscriminantAnalysis(),  # expit(d), not skl2onnx's expit(2d)
        CalibratedClassifierCV(LogisticRegression(), method="isotonic", cv=3),  # scores between thresholds
        CalibratedClassifierCV(DecisionTreeClassifier(max_depth=4, random_state=0), method="isotonic"),
    ],
    ids=["bare", "soft_voting", "discriminant", "isotonic_linear", "isotonic_tree"],
)
def test_estimator_converts_and_matches_sklearn(estimator):
    X, y, roles = numeric_table()
    estimator.fit(X, y)
    model = export.convert(estimator, roles, target_opset=17)
    np.testing.assert_allclose(probabilities(model, X), estimator.predict_proba(X)[:, 1], atol=1e-6)


def test_steps_are_named_by_path_in_nested_and_fitted_ensembles():
    inner = Pipeline([("scale", StandardScaler()), ("spline", SplineTransformer())])
    stack = StackingClassifier(
        [
            ("forest", RandomForestClassifier(n_estimators=3)),
            ("linear", make_pipeline(inner, LogisticRegression())),
        ],
        final_estimator=CalibratedClassifierCV(LogisticRegression(), cv=2),
    )
    pipeline = Pipeline(
        [("pre", ColumnTransformer([("n", "passthrough", ["a", "b", "c"])])), ("model", stack)]
    )
    expected = {
        "pre/n",
        "model/forest",
        "model/linear/pipeline/spline",
        "model/final_estimator/estimator",
    }
    X, y, _ = numeric_table()
    for candidate in (pipeline, pipeline.fit(X, y)):  # unfitted params, then the fitted estimators
        paths = {path for path, _ in support.steps(candidate)}
        assert expected <= paths, paths
        assert [p for p, _, _ in support.problems(candidate)] == ["model/linear/pipeline/spline"]


def test_hard_voting_is_refused_before_training():
    voting = VotingClassifier([("a", LogisticRegression()), ("b", DecisionTreeClassifier())], voting="hard")
    with pytest.raises(UserError, match=r"step 'model' \(sklearn.ensemble._voting.VotingClassifier\).*soft"):
        support.check_convertible(Pipeline([("model", voting)]), "vote")


def test_a_skl2onnx_failure_names_the_step_it_failed_on():
    # OneHotEncoder on a float column: skl2onnx's converter accepts only integer-valued levels.
    X = pd.DataFrame({"a": np.float32([0.5, 1.5, 0.5, 1.5]), "b": np.float32([1, 2, 3, 4])})
    pre = ColumnTransformer([("levels", OneHotEncoder(), ["a"]), ("rest", "passthrough", ["b"])])
    pipeline = Pipeline([("pre", pre), ("model", LogisticRegression())]).fit(X, [0, 1, 0, 1])
    with pytest.raises(UserError) as info:
        export.convert(pipeline, Roles(numeric=["a", "b"], categorical=[], id_like=[]), target_opset=17)
    message = str(info.value)
    assert message.startswith("step 'pre/levels' (sklearn.preprocessing._encoders.OneHotEncoder)")
    assert "skl2onnx failed" in message and "docs/data.md" in message and "\n" not in message


def test_scalers_divide_exactly_only_in_front_of_trees():
    from tests.conftest import fitted

    X, y, _ = numeric_table()
    scaled_forest = make_pipeline(StandardScaler(), RobustScaler(), RandomForestClassifier(n_estimators=3))
    scaled_forest.fit(X, y)
    assert list(export.exact_scaling(scaled_forest).values()) == [{"div": "div"}, {"exact": True}]
    model = export.convert(scaled_forest, Roles(numeric=["a", "b", "c"], categorical=[], id_like=[]), 17)
    np.testing.assert_allclose(probabilities(model, X), scaled_forest.predict_proba(X)[:, 1], atol=1e-6)
    # The built-in linear model keeps skl2onnx's Scaler op: its export does not change.
    assert export.exact_scaling(fitted("logistic_regression")) == {}

"""Exact tree thresholds (onnxship.convert.thresholds) on adversarial data: training values that come
in pairs of adjacent float32 numbers, so every split threshold is a float64 midpoint that float32
cannot hold, and skl2onnx's nearest rounding puts about half of them onto the upper value."""

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.base import clone
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    VotingClassifier,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeClassifier

from onnxship.contract.runtime import session
from onnxship.convert import export, thresholds
from onnxship.convert.boundary_rows import first_reaching_row, straddle
from onnxship.convert.thresholds import align, aligned, directed_float32
from onnxship.convert.tree_nodes import tree_nodes
from tests.conftest import churn_xy, fitted, onnx_probabilities

MODELS = {
    "decision_tree": lambda: DecisionTreeClassifier(random_state=0),
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(
        max_iter=20, min_samples_leaf=1, max_leaf_nodes=63, random_state=0
    ),
    "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=20, max_depth=6, random_state=0),
    "extra_trees": lambda: ExtraTreesClassifier(n_estimators=10, random_state=0),
    "random_forest": lambda: RandomForestClassifier(n_estimators=10, random_state=0),
    "soft_voting": lambda: VotingClassifier(
        [
            ("tree", DecisionTreeClassifier(random_state=0)),
            ("hgb", HistGradientBoostingClassifier(max_iter=5)),
        ],
        voting="soft",
        flatten_transform=False,
    ),
}


def adjacent_pairs(missing: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Two columns; in each, 60 float32 values and their float32 successors, labelled 0 and 1 (the
    first column decides, the second is noise). ``missing`` blanks a tenth of the second column."""
    rng = np.random.default_rng(7)
    low = np.sort(rng.uniform(1.0, 200.0, 60)).astype(np.float32)
    high = np.nextafter(low, np.float32(np.inf))
    first = np.concatenate([low, high])
    second = rng.permutation(first)
    if missing:
        second[rng.choice(len(second), len(second) // 10, replace=False)] = np.nan
    y = np.r_[np.zeros(60, dtype=int), np.ones(60, dtype=int)]
    return np.column_stack([first, second]).astype(np.float32), y


def probes(model, X: np.ndarray, missing: bool) -> np.ndarray:
    """Rows at the float32 just below and just above every split threshold of ``model``'s trees
    (built from a training row that reaches the split, as the gate's boundary rows are), plus the
    training rows, and with ``missing`` rows whose second column is NaN. (skl2onnx writes no
    missing-value direction for the DecisionTree family, so NaN rows are probed only where the
    trees learned one: HistGradientBoosting.)"""
    rows = [X]
    for nodes in tree_nodes(model):
        reach = first_reaching_row(nodes, X.astype(np.float64))
        for node in np.flatnonzero(~nodes.leaf):
            for _, value in straddle(float(nodes.threshold[node]), nodes.op):
                row = X[reach[node]].copy()
                row[nodes.feature[node]] = value
                rows.append(row[None, :])
    if missing:
        blank = X.copy()
        blank[:, 1] = np.nan
        rows.append(blank)
    return np.concatenate(rows).astype(np.float32)


def onnx_model(model, X: np.ndarray) -> bytes:
    return to_onnx(model, X[:1], options={id(model): {"zipmap": False}}, target_opset=17).SerializeToString()


def onnx_proba(model_bytes: bytes, X: np.ndarray) -> np.ndarray:
    sess = session(model_bytes)
    return sess.run(None, {sess.get_inputs()[0].name: X})[1][:, 1].astype(np.float64)


# skl2onnx 1.20 already rounds the DecisionTree family's thresholds down (its
# adjust_threshold_for_sklearn), but writes HistGradientBoosting's num_threshold as it is.
MISBRANCHES_WITHOUT_ALIGNMENT = {"hist_gradient_boosting", "soft_voting"}


@pytest.mark.parametrize("name", MODELS)
def test_aligned_trees_decide_in_float32_as_scikit_learn_does(name):
    missing = name == "hist_gradient_boosting"
    X, y = adjacent_pairs(missing)
    model = MODELS[name]().fit(X, y)
    rows = probes(model, X, missing)
    expected = model.predict_proba(rows)[:, 1]
    exact = align(model)
    assert exact.thresholds >= exact.moved >= exact.nearest_above > 0
    # The copy's own predictions on float32 inputs are the original's, bit for bit ...
    np.testing.assert_array_equal(exact.estimator.predict_proba(rows), model.predict_proba(rows))
    # ... and ONNX now follows every branch as scikit-learn does.
    got = onnx_proba(onnx_model(exact.estimator, X), rows)
    assert np.abs(got - expected).max() <= 1e-6, name
    np.testing.assert_array_equal(got >= 0.5, expected >= 0.5)
    # Without alignment: HistGradientBoosting's midpoints round up onto the upper float32 and a row
    # holding that value goes the other way (what this test catches without the fix); the other
    # families convert to the same bytes, aligned or not.
    before = onnx_model(model, X)
    if name in MISBRANCHES_WITHOUT_ALIGNMENT:
        assert np.abs(onnx_proba(before, rows) - expected).max() > 1e-3, name
    else:
        assert before == onnx_model(exact.estimator, X), name


def test_alignment_works_on_a_copy_and_through_pipelines():
    X, y = adjacent_pairs()
    pipeline = make_pipeline(FunctionTransformer(), DecisionTreeClassifier(random_state=0)).fit(X, y)
    before = pipeline[-1].tree_.threshold.copy()
    copy = aligned(pipeline)
    np.testing.assert_array_equal(pipeline[-1].tree_.threshold, before)  # the original is untouched
    after = copy[-1].tree_.threshold
    assert (after != before).any() and (after.astype(np.float32).astype(np.float64) == after).all()
    assert (after <= before).all()


def test_directed_rounding():
    t = np.array([17.69999981, 0.5, -1e300, 1e300, np.inf])
    down = directed_float32(t, "down")
    up = directed_float32(t, "up")
    assert np.float32(17.69999981) == np.float32(17.7)  # nearest rounds up, past t
    assert down[0] < 17.69999981 < up[0] and np.nextafter(np.float32(down[0]), np.float32(np.inf)) == up[0]
    assert down[1] == up[1] == 0.5  # already a float32: unchanged
    assert down[2] == -np.inf and up[2] == -np.finfo(np.float32).max
    assert down[3] == np.finfo(np.float32).max and up[3] == np.inf
    assert down[4] == up[4] == np.inf
    # For every float32 x near t: x <= t exactly when x <= down(t), and x < t exactly when x < up(t).
    x = np.nextafter(np.float32(17.7), np.float32(0)) + np.arange(-3, 4, dtype=np.float32) * np.float32(
        1.9e-6
    )
    assert ((x <= t[0]) == (x <= down[0])).all() and ((x < t[0]) == (x < up[0])).all()


@pytest.mark.parametrize("family", ["random_forest", "hist_gradient_boosting"])
def test_tree_families_match_scikit_learn_on_every_row_of_the_bundled_data(family):
    # All 5,000 rows, the 2,000 the pipeline was fitted on included: training rows sit on both sides
    # of every threshold, where a rounding up would show.
    X, _, roles = churn_xy()
    pipeline = fitted(family)
    model = export.convert(pipeline, roles, target_opset=17)
    features = export.feature_schema(model, roles, pipeline)
    expected = pipeline.predict_proba(X)[:, 1]
    got = onnx_probabilities(model, features, X)
    assert len(X) == 5000
    assert np.abs(expected - got).max() <= 1e-6, family
    np.testing.assert_array_equal(expected >= 0.5, got >= 0.5)


def test_alignment_reaches_the_members_of_every_meta_estimator():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import BaggingClassifier, StackingClassifier

    X, y = adjacent_pairs()
    tree = DecisionTreeClassifier(max_depth=4, random_state=0)
    for model in (
        BaggingClassifier(tree, n_estimators=3, max_features=1, random_state=0),
        StackingClassifier([("tree", tree), ("hgb", HistGradientBoostingClassifier(max_iter=3))]),
        CalibratedClassifierCV(tree, cv=2),
        make_pipeline(
            FunctionTransformer(), VotingClassifier([("a", tree), ("b", clone(tree))], voting="soft")
        ),
    ):
        model.fit(X, y)
        exact = align(model)
        found = tree_nodes(model[-1] if hasattr(model, "steps") else model)
        assert exact.thresholds == sum(int((~t.leaf).sum()) for t in found) > 0, type(model).__name__
        after = tree_nodes(exact.estimator[-1] if hasattr(model, "steps") else exact.estimator)
        for nodes in after:
            split = nodes.threshold[~nodes.leaf]
            assert (split.astype(np.float32).astype(np.float64) == split).all()
        np.testing.assert_array_equal(exact.estimator.predict_proba(X), model.predict_proba(X))


def test_a_library_model_aligns_through_its_registered_function(monkeypatch):
    # How the LightGBM and XGBoost aligners plug in: by class name, inside any nesting.
    class Booster(FunctionTransformer):
        pass

    calls = []
    monkeypatch.setitem(thresholds.ALIGNERS, "Booster", lambda model: calls.append(model) or (model, 7, 3))
    exact = align(make_pipeline(FunctionTransformer(), Booster()))
    assert len(calls) == 1 and isinstance(exact.estimator[-1], Booster)
    assert (exact.thresholds, exact.moved) == (7, 3)

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from onnxship.train import models, training
from tests.conftest import churn_xy, small_train_params


def brute_force(y, p, objective):
    """Best objective over every threshold at an observed probability, by scikit-learn's metrics."""
    best = -np.inf
    for t in np.unique(p):
        d = p >= t
        scorer = f1_score if objective == "f1" else balanced_accuracy_score
        best = max(best, scorer(y, d))
    return best


@pytest.mark.parametrize("objective", ["f1", "balanced_accuracy"])
def test_threshold_tuning_matches_brute_force(objective):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    # Rounded probabilities make ties, as trees do.
    p = np.round(np.clip(0.3 * y + rng.normal(0.35, 0.2, 400), 0, 1), 2)
    threshold, value = training.tune_threshold(y, p, objective)
    assert value == pytest.approx(brute_force(y, p, objective))
    decision = p >= threshold
    achieved = f1_score(y, decision) if objective == "f1" else balanced_accuracy_score(y, decision)
    assert achieved == pytest.approx(value)
    # The threshold sits strictly between observed probabilities: no row ties with it.
    assert not np.any(p == threshold)


def test_youden_j_is_balanced_accuracy_rescaled():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = rng.random(200)
    t_j, j = training.tune_threshold(y, p, "youden_j")
    t_b, b = training.tune_threshold(y, p, "balanced_accuracy")
    assert t_j == t_b and j == pytest.approx(2 * b - 1)


def test_cross_validation_is_deterministic_and_out_of_fold():
    X, y, roles = churn_xy()
    X, y = X.iloc[:1200], y[:1200]
    pipe = models.build_pipeline("logistic_regression", roles, small_train_params())
    first = training.cross_validate("lr", pipe, X, y, training.CVPlan(3, "average_precision", 7, n_jobs=1))
    second = training.cross_validate("lr", pipe, X, y, training.CVPlan(3, "average_precision", 7, n_jobs=2))
    assert first.fold_scores == second.fold_scores
    np.testing.assert_array_equal(first.oof_probability, second.oof_probability)
    assert len(first.fold_scores) == 3 and 0 < first.mean <= 1
    # Out-of-fold: differs from the in-sample fit's probabilities.
    in_sample = pipe.fit(X, y).predict_proba(X)[:, 1]
    assert not np.allclose(in_sample, first.oof_probability)


def test_trees_get_no_scaler_and_linear_models_do():
    _, _, roles = churn_xy()
    params = small_train_params()
    for family, scaled in [
        ("logistic_regression", True),
        ("mlp", True),
        ("random_forest", False),
        ("hist_gradient_boosting", False),
    ]:
        numeric = models.build_pipeline(family, roles, params).named_steps["preprocess"].transformers[0][1]
        assert ("scale" in numeric.named_steps) == scaled, family


def test_test_scores_use_the_threshold_rule():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.5, 0.5, 0.9])
    scores = training.test_scores(y, p, threshold=0.5)
    assert scores["recall"] == 1.0 and scores["precision"] == pytest.approx(2 / 3)


def test_fitted_pipeline_pickles_the_same_whatever_the_core_count():
    from threadpoolctl import threadpool_limits

    from onnxship.train.lineage import joblib_bytes

    X, y, roles = churn_xy()
    params = small_train_params()
    pickles = set()
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            pipe = models.build_pipeline("hist_gradient_boosting", roles, params).fit(X.iloc[:800], y[:800])
        pickles.add(joblib_bytes(models.machine_independent(pipe)))
    assert len(pickles) == 1

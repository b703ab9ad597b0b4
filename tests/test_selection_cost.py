"""Cost-aware model selection: early stopping, the forest's row cap, the screen, pooled CV folds,
and an early-stopped model through export and the parity gate."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from onnxship.core.errors import UserError
from onnxship.core.params import DataParams, parse_params
from onnxship.train import data, models, training
from tests.conftest import churn_xy, small_train_params
from tests.datagen import make_dataset
from tests.test_params import bundled
from tests.test_transformers import gate


def test_early_stopping_auto_is_decided_once_from_the_training_rows():
    params = small_train_params(early_stopping_min_rows=1000)
    assert params.hist_gradient_boosting.early_stopping == "auto"
    small, large = models.decide_early_stopping(params, 1000), models.decide_early_stopping(params, 1001)
    for family in ("hist_gradient_boosting", "mlp"):
        assert getattr(small, family).early_stopping is False
        assert getattr(large, family).early_stopping is True
    # Decided once: a CV fold with fewer rows than the threshold still stops early.
    assert models.estimator("mlp", large, rows=10).early_stopping is True
    forced = small_train_params(hist_gradient_boosting={"max_iter": 40, "early_stopping": False})
    assert models.decide_early_stopping(forced, 10**6).hist_gradient_boosting.early_stopping is False


def test_early_stopping_auto_is_on_for_a_wide_table_of_few_rows():
    # 6,552 rows x 1,503 columns = 9.8M cells > 2M: on, though under early_stopping_min_rows (10,000);
    # the bundled 4,000 rows x 19 columns = 76,000 cells stay off.
    params = small_train_params()
    wide, narrow = (
        models.decide_early_stopping(params, 6552, 1503),
        models.decide_early_stopping(params, 4000, 19),
    )
    for family in ("hist_gradient_boosting", "mlp"):
        assert getattr(wide, family).early_stopping is True
        assert getattr(narrow, family).early_stopping is False
    forced = small_train_params(mlp={"early_stopping": False})
    assert models.decide_early_stopping(forced, 6552, 1503).mlp.early_stopping is False


def test_forest_caps_rows_per_tree_only_when_the_fit_set_is_larger():
    params = small_train_params(random_forest={"n_estimators": 5, "max_samples": 500})
    assert models.estimator("random_forest", params, rows=500).max_samples is None
    assert models.estimator("random_forest", params, rows=501).max_samples == 500
    assert models.estimator("random_forest", params).max_samples is None  # rows unknown


def test_bad_cost_knobs_are_refused():
    raw = bundled()
    raw["train"].setdefault("hist_gradient_boosting", {})["early_stopping"] = "sometimes"
    with pytest.raises(UserError, match="early_stopping"):
        parse_params(raw)
    raw = bundled()
    raw["train"].setdefault("screen", {})["keep"] = 0
    with pytest.raises(UserError, match=r"train\.screen\.keep"):
        parse_params(raw)


def test_pooled_folds_give_the_same_result_whatever_n_jobs_and_log_each_fold(caplog):
    X, y, roles = churn_xy()
    X, y = X.iloc[:900], y[:900]
    params = small_train_params(
        early_stopping_min_rows=100, hist_gradient_boosting={"max_iter": 200, "n_iter_no_change": 3}
    )
    params = models.decide_early_stopping(params, len(y))
    families = ["logistic_regression", "hist_gradient_boosting"]

    def pipelines(family, rows):
        return models.build_pipeline(family, roles, params, rows=rows)

    with caplog.at_level(logging.INFO, logger="train"):
        serial = training.cross_validate_all(
            pipelines, families, X, y, training.CVPlan(3, "average_precision", 7, 1)
        )
    fold_lines = [r.getMessage() for r in caplog.records if " fold " in r.getMessage()]
    assert len(fold_lines) == 6 and all(" s (" in line for line in fold_lines)
    pooled = training.cross_validate_all(
        pipelines, families, X, y, training.CVPlan(3, "average_precision", 7, 2)
    )
    alone = training.cross_validate(
        "hist_gradient_boosting",
        pipelines("hist_gradient_boosting", 600),
        X,
        y,
        training.CVPlan(3, "average_precision", 7),
    )
    for family in families:
        assert serial[family].fold_scores == pooled[family].fold_scores
        assert serial[family].fold_iterations == pooled[family].fold_iterations
        np.testing.assert_array_equal(serial[family].oof_probability, pooled[family].oof_probability)
    assert alone.fold_scores == serial["hist_gradient_boosting"].fold_scores
    # Early stopping did stop: fewer trees than max_iter in every fold.
    assert all(
        n < params.hist_gradient_boosting.max_iter for n in serial["hist_gradient_boosting"].fold_iterations
    )


def test_screen_sample_is_stratified_and_finalists_keep_listing_order():
    y = np.array([1] * 100 + [0] * 900)
    sample = training.stratified_subsample(y, 200, seed=0)
    assert len(sample) == 200 and y[sample].sum() == 20 and np.all(np.diff(sample) > 0)
    assert len(training.stratified_subsample(y, 5000, seed=0)) == 1000
    results = {
        f: training.CVResult(f, [score], np.zeros(1))
        for f, score in [("a", 0.5), ("b", 0.7), ("c", 0.7), ("d", 0.9)]
    }
    assert training.finalists(results, ["a", "b", "c", "d"], 2) == ["b", "d"]  # b before c on the tie


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "mlp"])
def test_an_early_stopped_model_exports_and_passes_the_gate(family):
    frame = make_dataset(2500, seed=2).astype(str).replace("nan", "")
    dp = DataParams(path="x.csv", target="status", positive_label="churned")
    roles = data.infer_roles(frame, dp)
    train, test = frame.iloc[:2000], frame.iloc[2000:].reset_index(drop=True)
    params = small_train_params(
        max_categories=30,
        hist_gradient_boosting={"max_iter": 200, "early_stopping": True, "n_iter_no_change": 3},
        mlp={"hidden_layer_sizes": [16], "max_iter": 200, "early_stopping": True, "n_iter_no_change": 3},
    )
    pipeline = training.fit_final(
        models.build_pipeline(family, roles, params, rows=len(train)),
        data.features(train, roles),
        data.target(train, dp),
        threads=1,
    )
    assert training.fitted_iterations(pipeline) < 200  # it stopped early
    report = gate(pipeline, test, roles)
    assert report["passed"], report["backends"]["onnx"]["reasons"]

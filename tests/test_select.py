import pytest

from onnxship.train.select import Candidate, choose, paired_loss, within_noise

BEST = [0.90, 0.86, 0.88, 0.91, 0.85]


def shifted(delta: list[float]) -> list[float]:
    return [b - d for b, d in zip(BEST, delta, strict=True)]


def test_paired_loss_is_the_mean_fold_difference_with_its_standard_error():
    loss, error = paired_loss(BEST, shifted([0.01, 0.03, 0.01, 0.03, 0.02]))
    assert loss == pytest.approx(0.02)
    assert error == pytest.approx(0.004472, abs=1e-6)  # sd 0.01 / sqrt(5)


def test_cheaper_candidate_within_the_noise_wins_with_reasons():
    # Loses 0.001 on average, fold noise about 0.0014: within one standard error and within 0.005.
    cheap = Candidate("50 trees", shifted([0.003, -0.001, 0.002, -0.002, 0.003]), cost=3000)
    costly = Candidate("200 trees", BEST, cost=12000)
    pick = choose([costly, cheap], noise_sigmas=1.0, max_score_loss=0.005, what="size")
    assert pick.choice == "50 trees" and pick.best == "200 trees"
    assert pick.within_noise == ["200 trees", "50 trees"]
    assert pick.reasons[0] == "best size by mean CV score: 200 trees (0.8800)"
    assert (
        "chose 50 trees: cheapest within the noise (cost 3000 vs 12000 for 200 trees, 4.0x less)"
        in pick.reasons
    )


def test_a_consistent_loss_is_not_noise_even_if_small():
    # Loses 0.002 on every fold: standard error 0, so it is a real loss.
    steady = Candidate("small", shifted([0.002] * 5), cost=1)
    pick = choose([Candidate("big", BEST, cost=10), steady], noise_sigmas=2.0, max_score_loss=0.005)
    assert pick.choice == "big" and pick.within_noise == ["big"]


def test_max_score_loss_caps_what_noise_can_excuse():
    noisy = Candidate("noisy", shifted([0.05, -0.03, 0.04, -0.01, 0.02]), cost=1)  # loss 0.014
    assert within_noise([Candidate("best", BEST), noisy], noise_sigmas=3.0, max_score_loss=0.005) == ["best"]
    assert within_noise([Candidate("best", BEST), noisy], noise_sigmas=3.0, max_score_loss=0.05) == [
        "best",
        "noisy",
    ]


def test_prefer_cheaper_off_keeps_the_best():
    cheap = Candidate("cheap", shifted([0.001, 0.0, 0.0, 0.0, -0.001]), cost=1)
    pick = choose([Candidate("best", BEST, cost=9), cheap], 1.0, 0.005, prefer_cheaper=False)
    assert pick.choice == "best"
    assert pick.reasons[-1] == "chose best: cost not weighed (prefer_cheaper off)"


def test_best_that_is_also_cheapest_is_kept_and_ties_go_to_the_higher_score_then_first_listed():
    near = Candidate("near", shifted([0.001, -0.001, 0.0, 0.001, -0.0005]), cost=5)
    pick = choose([Candidate("best", BEST, cost=5), near], 1.0, 0.005)
    assert pick.choice == "best"
    twin = Candidate("twin", BEST, cost=5)
    assert choose([Candidate("first", BEST, cost=5), twin], 1.0, 0.005).choice == "first"


def test_only_candidates_within_the_noise_need_a_cost():
    far = Candidate("far", shifted([0.1] * 5))  # no cost: never a contender
    assert choose([Candidate("best", BEST, cost=3), far], 1.0, 0.005).choice == "best"


def test_a_cost_that_cannot_be_counted_is_not_guessed_and_the_best_ships():
    # Rule 4: a model of your own whose size onnxship does not count (cost None) within the noise.
    near = Candidate("mine", shifted([0.001, 0.0, 0.0, 0.0, -0.001]))  # within the noise, no cost
    pick = choose([Candidate("best", BEST, cost=3), near], 1.0, 0.005)
    assert pick.choice == "best" and pick.within_noise == ["best", "mine"]
    assert (
        pick.reasons[-1] == "chose best: no cost to weigh for mine (a model whose size onnxship cannot count)"
    )
    # ... and the best ships even when the best is the one without a cost.
    cheap = Candidate("cheap", shifted([0.001, 0.0, 0.0, 0.0, -0.001]), cost=1)
    assert choose([Candidate("mine", BEST), cheap], 1.0, 0.005).choice == "mine"


def test_the_cost_of_a_model_of_your_own_is_counted_when_it_is_trees_or_weights():
    import numpy as np
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    from onnxship.train import sizes

    X, y = np.random.default_rng(0).normal(size=(200, 3)), np.arange(200) % 2
    boosted = GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(X, y)
    assert sizes.model_cost(boosted) == sum(t.tree_.node_count for t in boosted.estimators_.ravel())
    assert sizes.model_cost(LogisticRegression().fit(X, y)) == 4  # 3 weights + intercept, no Pipeline
    assert sizes.model_cost(SVC(probability=True).fit(X, y)) is None  # not counted: not guessed


def test_tree_counts_are_scored_from_one_fit_per_fold_and_cost_grows_with_trees():
    import numpy as np

    from onnxship.train import models, sizes, training
    from tests.conftest import churn_xy, fitted, small_train_params

    X, y, roles = churn_xy()
    params = small_train_params()  # 40 boosting iterations, 3 folds
    pipe = models.build_pipeline("hist_gradient_boosting", roles, params)
    candidates, oof = sizes.tree_count_candidates(pipe, X.iloc[:1500], y[:1500], [10, 20, 40], params)
    assert [c.name for c in candidates] == ["10 trees", "20 trees", "40 trees"]
    assert [len(c.fold_scores) for c in candidates] == [3, 3, 3]
    assert candidates[0].cost < candidates[1].cost < candidates[2].cost
    # The largest count is the plain CV of the same pipeline on the same folds.
    full = training.cross_validate(
        "hgb", pipe, X.iloc[:1500], y[:1500], training.CVPlan(3, params.cv_metric, params.seed)
    )
    assert candidates[-1].fold_scores == pytest.approx(full.fold_scores)
    assert oof["40 trees"] == pytest.approx(full.oof_probability)
    # The family CV keeps the same fits' stages: the scan then reads them and fits nothing again.
    plan = training.CVPlan(3, params.cv_metric, params.seed, tree_counts={"hgb": [10, 20, 40]})
    kept = training.cross_validate("hgb", pipe, X.iloc[:1500], y[:1500], plan)
    reused, reused_oof = sizes.tree_count_candidates(
        pipe, X.iloc[:1500], y[:1500], [10, 20, 40], params, folds=kept.fold_stages
    )
    same = [(c.name, c.fold_scores, c.cost) for c in candidates]
    assert [(c.name, c.fold_scores, c.cost) for c in reused] == same
    assert all(np.array_equal(reused_oof[name], oof[name]) for name in oof)
    for family in ("logistic_regression", "random_forest", "hist_gradient_boosting", "mlp"):
        assert sizes.model_cost(fitted(family)) > 0

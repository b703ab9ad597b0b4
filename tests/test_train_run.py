"""The train stage's steps (onnxship.train.run) and lineage.json's shape, on tiny inputs."""

import hashlib
import json

import numpy as np
import pytest

from onnxship.core.errors import UserError
from onnxship.train import run
from onnxship.train.training import CVResult
from tests.conftest import CHURN_PARAMS, REPO, churn_raw, small_train_params


def test_the_test_split_is_test_size_of_the_rows_capped_at_test_max_rows():
    tp = small_train_params(test_size=0.2, test_max_rows=100_000)
    assert run.held_out(1_000, tp) == 0.2
    assert run.held_out(500_000, tp) == 0.2  # 100,000 rows: at the cap, not over it
    assert run.held_out(500_005, tp) == 100_000  # 100,001 rows would be over: the cap, as a row count
    assert run.held_out(10_000_000, small_train_params(test_max_rows=None)) == 0.2


def test_the_split_is_stratified_disjoint_and_covers_every_row():
    y = np.array([1] * 20 + [0] * 80)
    idx_train, idx_test = run.split_rows(y, small_train_params(test_size=0.25))
    assert sorted(idx_train + idx_test) == list(range(100))
    assert len(idx_test) == 25 and y[idx_test].sum() == 5  # a quarter of the 20 positives


def test_the_training_split_needs_cv_folds_rows_of_each_class():
    # 10 positives in 60 rows. test_size 0.5: 30 test rows, 30 training rows of which 30 * 10/60 = 5
    # are positive, enough for 5 folds. test_size 0.6: ceil(0.6 * 60) = 36 test rows, 24 training
    # rows with 24 * 10/60 = 4 positives: one short. The whole file's 10 positives passed the old
    # check (2 per fold), yet scikit-learn refused to fold.
    y = np.array([1] * 10 + [0] * 50)
    idx_train, _ = run.split_rows(y, small_train_params(test_size=0.5, cv_folds=5))
    assert len(idx_train) == 30 and y[idx_train].sum() == 5
    wanted = (
        r"train.test_size 0.6 leaves 24 training rows, 4 of the smaller class; "
        r"train.cv_folds 5 needs at least 5: lower train.test_size or train.cv_folds"
    )
    with pytest.raises(UserError, match=wanted):
        run.split_rows(y, small_train_params(test_size=0.6, cv_folds=5))
    # ceil(0.999 * 60) = 60 test rows: nothing trains (scikit-learn would refuse to split at all).
    with pytest.raises(UserError, match="leaves 0 training rows, 0 of the smaller class"):
        run.split_rows(y, small_train_params(test_size=0.999, cv_folds=5))


def test_the_test_split_needs_both_classes():
    # 10 positives in 100 rows, test_size 0.03: 3 test rows, 3 * 10/100 = 0.3 positives, rounded to
    # none (the 0.7 remainder of the 2.7 negatives wins the third row). No positive test row: no test
    # scores, no ROC or precision-recall curve.
    y = np.array([1] * 10 + [0] * 90)
    wanted = r"train.test_size 0.03 holds out 3 test rows, none of one class; .* raise train.test_size$"
    with pytest.raises(UserError, match=wanted):
        run.split_rows(y, small_train_params(test_size=0.03, cv_folds=5))
    # A single test row can never hold both classes (scikit-learn would refuse to split).
    with pytest.raises(UserError, match="holds out 1 test rows, none of one class"):
        run.split_rows(y, small_train_params(test_size=0.01, cv_folds=5))
    # The cap set the size: its knob is the one to raise.
    wanted = r"3 test rows \(capped by train.test_max_rows 3\).* raise train.test_max_rows"
    with pytest.raises(UserError, match=wanted):
        run.split_rows(y, small_train_params(test_size=0.2, test_max_rows=3, cv_folds=5))
    _, idx_test = run.split_rows(y, small_train_params(test_size=0.1, cv_folds=5))
    assert len(idx_test) == 10 and y[idx_test].sum() == 1


def test_calibration_rows_are_training_rows_in_file_order():
    idx_train = [9, 2, 7, 4, 0, 5]  # the test rows are 1, 3, 6, 8
    rows = run.calibration_rows(idx_train, small_train_params(calibration_rows=4, seed=3))
    assert len(rows) == 4 and rows == sorted(rows) and set(rows) <= set(idx_train)
    assert rows == run.calibration_rows(idx_train, small_train_params(calibration_rows=4, seed=3))
    # Fewer training rows than asked for: all of them.
    assert run.calibration_rows(idx_train, small_train_params(calibration_rows=2000)) == [0, 2, 4, 5, 7, 9]


def test_the_minority_class_needs_two_rows_per_fold():
    run.check_class_sizes(np.array([1] * 10 + [0] * 50), folds=5)
    with pytest.raises(UserError, match=r"the minority class has 9 rows; need at least 10 .* 5-fold CV"):
        run.check_class_sizes(np.array([1] * 9 + [0] * 50), folds=5)
    with pytest.raises(UserError, match="the minority class has 3 rows; need at least 4"):
        run.check_class_sizes(np.array([1] * 50 + [0] * 3), folds=2)


def no_build(family: str, rows: int):
    raise AssertionError("the screen ran CV although it should not have")


@pytest.mark.parametrize(
    "screen, rows, candidates",
    [
        ({"rows": None, "keep": 2}, 100, 4),  # screening off
        ({"rows": 100, "keep": 2}, 100, 4),  # no more rows than the sample
        ({"rows": 50, "keep": 2}, 100, 2),  # no more candidates than it keeps
    ],
)
def test_the_screen_runs_only_on_more_rows_and_candidates_than_it_keeps(screen, rows, candidates):
    families = ["logistic_regression", "random_forest", "hist_gradient_boosting", "mlp"][:candidates]
    tp = small_train_params(screen=screen, candidates=families)
    finalists, record = run.screen(no_build, None, np.zeros(rows), tp)
    assert finalists == families and record is None


def test_cv_summary_rounds_to_six_digits_and_keeps_the_family_order():
    results = {
        "mlp": CVResult("mlp", [0.81234567, 0.79], np.zeros(4), [120, 98]),
        "random_forest": CVResult("random_forest", [0.8, 0.8], np.zeros(4), [None, None]),
    }
    summary = run.cv_summary(results)
    assert list(summary) == ["mlp", "random_forest"]
    assert summary["mlp"] == {
        "mean": 0.801173,  # (0.81234567 + 0.79) / 2 = 0.801172835
        "std": 0.011173,  # |0.81234567 - 0.79| / 2 = 0.011172835
        "folds": [0.812346, 0.79],
        "iterations": [120, 98],
    }
    assert summary["random_forest"]["std"] == 0.0 and summary["random_forest"]["iterations"] == [None, None]


def test_stopped_early_only_means_something_with_early_stopping_on():
    tp = small_train_params(hist_gradient_boosting={"max_iter": 40, "early_stopping": True})
    assert run.stopped_early("hist_gradient_boosting", tp, 31, rows=1000) is True
    assert run.stopped_early("hist_gradient_boosting", tp, 40, rows=1000) is False
    off = small_train_params(hist_gradient_boosting={"max_iter": 40, "early_stopping": False})
    assert run.stopped_early("hist_gradient_boosting", off, 31, rows=1000) is None
    assert run.stopped_early("random_forest", tp, None, rows=1000) is None


def key_paths(tree: dict, prefix: str = "") -> list[str]:
    """Every key of a lineage record, dotted, in order (not inside the parts that vary by family)."""
    paths = []
    for key, value in tree.items():
        paths.append(prefix + key)
        if isinstance(value, dict) and key not in ("candidates", "hyperparameters", "resolved", "selection"):
            paths += key_paths(value, f"{prefix}{key}.")
    return paths


def test_a_small_training_run_gives_a_consistent_result_and_lineage_in_the_committed_order():
    frame = churn_raw().iloc[:600]
    tp = small_train_params(candidates=["logistic_regression", "random_forest"], calibration_rows=50)
    result = run.train(frame, CHURN_PARAMS, tp)
    assert not set(result.test_rows) & set(result.calibration_rows)
    assert len(result.test_rows) == 120 and len(result.calibration_rows) == 50  # test_size 0.2 of 600
    assert len(result.y_test) == len(result.p_test) == 120
    record = result.lineage
    assert record["threshold"]["value"] == result.threshold
    assert record["model_sha256"] == hashlib.sha256(result.model_bytes).hexdigest()
    assert record["split"]["train_rows"] == record["cv"]["rows"] == 480
    assert record["chosen"]["family"] in tp.candidates and record["cv"]["screen"] is None
    # The same keys in the same order as the committed lineage.json, which later stages and diffs read.
    committed = json.loads((REPO / "artifacts" / "lineage.json").read_text())
    assert key_paths(record) == key_paths(committed)

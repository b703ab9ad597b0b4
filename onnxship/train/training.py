"""Model selection by stratified k-fold CV and decision-threshold tuning on out-of-fold predictions.

The decision rule is ``p >= threshold`` everywhere. The tuned threshold is placed midway between two
neighbouring out-of-fold probabilities, so that no training probability sits exactly on it: tree
probabilities are multiples of 1/n_trees and would otherwise tie with the threshold.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from onnxship.train import boosters
from onnxship.train.staged import Stages, fold_stages, tree_counts

SCORERS = {
    "average_precision": lambda y, p: average_precision_score(y, p),
    "roc_auc": lambda y, p: roc_auc_score(y, p),
    "neg_log_loss": lambda y, p: -log_loss(y, p, labels=[0, 1]),
    "f1": lambda y, p: f1_score(y, p >= 0.5, zero_division=0.0),
    "balanced_accuracy": lambda y, p: balanced_accuracy_score(y, p >= 0.5),
}


log = logging.getLogger("train")


@dataclass
class CVResult:
    family: str
    fold_scores: list[float]
    oof_probability: np.ndarray
    # Iterations each fold's fit ran (None for the forest): shows what early stopping did.
    fold_iterations: list[int | None] = field(default_factory=list)
    # A boosting family's staged scores per fold (onnxship.train.staged), for the tree-count scan.
    fold_stages: list[Stages] | None = None

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_scores))


def fitted_iterations(model: Pipeline) -> int | None:
    """Iterations the fitted estimator ran: trees of HGB, LightGBM and XGBoost, epochs of the MLP,
    solver steps of the logistic regression; None for the forest, whose size is n_estimators."""
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model  # a classifier of your own
    rounds = boosters.iterations(final)
    if rounds is not None:
        return rounds
    n_iter = getattr(final, "n_iter_", None)
    if n_iter is None or not np.size(n_iter):
        return None
    return int(np.max(n_iter))


def _fit_predict(
    pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, fit_idx, score_idx, counts: list[int] | None = None
) -> tuple[np.ndarray, int | None, float, Stages | None]:
    """Fit on ``fit_idx``, predict ``score_idx``, on one OpenMP/BLAS thread: the folds run side by
    side in worker processes, so threads inside a fit would only fight over the same cores. With
    tree ``counts`` (a boosting family), also the staged scores of the smaller models."""
    start = time.perf_counter()
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = clone(pipeline).fit(X.iloc[fit_idx], y[fit_idx])
        proba = model.predict_proba(X.iloc[score_idx])[:, 1]
        stages = fold_stages(model, X.iloc[score_idx], counts) if counts else None
    return proba, fitted_iterations(model), time.perf_counter() - start, stages


@dataclass(frozen=True)
class CVPlan:
    """How candidates are cross-validated: stratified ``folds`` folds drawn with ``seed``, each
    scored by ``metric``, the fits pooled over ``n_jobs`` single-threaded worker processes."""

    folds: int
    metric: str
    seed: int
    n_jobs: int = 1
    # {family: tree counts}: boosting families also keep their staged scores (staged.fold_stages).
    tree_counts: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params) -> CVPlan:
        """params.yaml's train section: cv_folds, cv_metric, seed, n_jobs, and the tree counts
        train.selection scans for each boosting candidate."""
        counts = {f: tree_counts(f, params) for f in params.candidates if tree_counts(f, params)}
        return cls(params.cv_folds, params.cv_metric, params.seed, params.n_jobs, counts)


def cross_validate_all(
    pipelines: Callable[[str, int], Pipeline],
    families: list[str],
    X: pd.DataFrame,
    y: np.ndarray,
    plan: CVPlan,
    stage: str = "cv",
) -> dict[str, CVResult]:
    """Stratified k-fold CV of every family, the folds of all families pooled over ``plan.n_jobs``
    worker processes (one thread each), so a slow family does not leave a core idle.

    ``pipelines(family, rows)`` builds the unfitted pipeline for a fit on ``rows`` rows. Every fold
    logs its score, iterations and time as it finishes (timings go to the log, never to the
    artifacts). The result does not depend on ``n_jobs`` or on the order folds finish in.
    """
    # The split depends on y (and its length) only; no need to hand it the frame.
    splits = list(
        StratifiedKFold(n_splits=plan.folds, shuffle=True, random_state=plan.seed).split(np.zeros(len(y)), y)
    )
    tasks = [(family, k) for family in families for k in range(plan.folds)]
    jobs = (
        delayed(_tagged)(
            i,
            _fit_predict,
            pipelines(family, len(splits[k][0])),
            X,
            y,
            *splits[k],
            plan.tree_counts.get(family),
        )
        for i, (family, k) in enumerate(tasks)
    )
    start = time.perf_counter()
    outcome: dict[tuple[str, int], tuple] = {}
    parallel = Parallel(n_jobs=min(plan.n_jobs, len(tasks)), return_as="generator_unordered")
    # Unordered: each fold is logged when it ends; the index says which one it was.
    for done, (index, result) in enumerate(parallel(jobs), 1):
        family, k = tasks[index]
        outcome[(family, k)] = result
        score = SCORERS[plan.metric](y[splits[k][1]], result[0])
        progress = f"{done}/{len(tasks)} fits, {time.perf_counter() - start:.0f} s elapsed"
        _log_fold(
            f"{stage} {family} fold {k + 1}/{plan.folds}", f"{plan.metric} {score:.4f}", result, progress
        )
    results = {}
    for family in families:
        oof = np.empty(len(y), dtype=np.float64)
        scores, iterations, stages = [], [], []
        for k, (_, score_idx) in enumerate(splits):
            proba, n_iter, _, fold = outcome[(family, k)]
            oof[score_idx] = proba
            scores.append(float(SCORERS[plan.metric](y[score_idx], proba)))
            iterations.append(n_iter)
            stages.append(fold)
        staged = stages if family in plan.tree_counts else None
        results[family] = CVResult(family, scores, oof, iterations, staged)
    return results


def _log_fold(fold: str, score: str, result: tuple, progress: str) -> None:
    """One line per finished fold, e.g. "cv mlp fold 3/5: average_precision 0.61, 300 iterations,
    7.4 s (18/20 fits, 23 s elapsed)"."""
    _, n_iter, seconds, _ = result
    iterations = "" if n_iter is None else f", {n_iter} iterations"
    log.info("%s: %s%s, %.1f s (%s)", fold, score, iterations, seconds, progress)


def _tagged(index: int, function, *args):
    """``function(*args)`` tagged with ``index``: results come back in the order they finish."""
    return index, function(*args)


def cross_validate(family: str, pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, plan: CVPlan) -> CVResult:
    """Score ``pipeline`` on each fold and keep every out-of-fold probability."""
    return cross_validate_all(lambda _f, _rows: pipeline, [family], X, y, plan)[family]


def stratified_subsample(y: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """Sorted indices of a stratified random sample of ``rows`` rows (all rows if there are fewer)."""
    if rows >= len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(y)), train_size=rows, stratify=y, random_state=seed)
    return np.sort(keep)


def finalists(results: dict[str, CVResult], order: list[str], keep: int) -> list[str]:
    """The ``keep`` best families by mean CV score, in ``order`` (which also breaks ties)."""
    ranked = sorted(order, key=lambda f: -results[f].mean)  # stable: the first listed wins a tie
    kept = set(ranked[:keep])
    return [f for f in order if f in kept]


def fit_final(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, threads: int) -> Pipeline:
    """Fit the chosen pipeline on all training rows with ``threads`` OpenMP threads (nothing else
    runs then) and one BLAS thread: OpenMP threads do not change what HistGradientBoosting learns
    (tests/test_training.py), while a BLAS product may sum in another order on another thread count.
    """
    with (
        threadpool_limits(limits=threads, user_api="openmp"),
        threadpool_limits(limits=1, user_api="blas"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return pipeline.fit(X, y)


def objective_curve(y: np.ndarray, p: np.ndarray, objective: str) -> tuple[np.ndarray, np.ndarray]:
    """Objective value of every distinct cut ``p >= t``, with t midway between neighbouring values.

    Returns (thresholds, values), thresholds in decreasing order.
    """
    values, inverse = np.unique(p, return_inverse=True)
    positives = np.bincount(inverse, weights=y, minlength=len(values))
    counts = np.bincount(inverse, minlength=len(values))
    # Walk from the highest probability down: cut i predicts positive every value >= values[i].
    tp = np.cumsum(positives[::-1])
    predicted = np.cumsum(counts[::-1])
    fp = predicted - tp
    total_pos = y.sum()
    total_neg = len(y) - total_pos
    fn = total_pos - tp
    tpr = tp / total_pos if total_pos else np.zeros_like(tp)
    tnr = (total_neg - fp) / total_neg if total_neg else np.zeros_like(tp)
    if objective == "f1":
        score = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tpr), where=(2 * tp + fp + fn) > 0)
    elif objective == "balanced_accuracy":
        score = (tpr + tnr) / 2
    elif objective == "youden_j":
        score = tpr + tnr - 1
    else:
        raise ValueError(f"unknown threshold objective {objective!r}")
    descending = values[::-1]
    lower = np.append(descending[1:], 0.0)
    return (descending + lower) / 2, score


def tune_threshold(y: np.ndarray, p: np.ndarray, objective: str) -> tuple[float, float]:
    """The threshold that maximises ``objective``; on a tie the highest such threshold."""
    thresholds, score = objective_curve(y, p, objective)
    best = int(np.argmax(score))
    return float(thresholds[best]), float(score[best])


def objective_at(y: np.ndarray, p: np.ndarray, threshold: float, objective: str) -> float:
    """The value of ``objective`` for the decision ``p >= threshold``."""
    decision = p >= threshold
    if objective == "f1":
        return float(f1_score(y, decision, zero_division=0.0))
    balanced = float(balanced_accuracy_score(y, decision))
    if objective == "balanced_accuracy":
        return balanced
    if objective == "youden_j":
        return 2 * balanced - 1  # TPR + TNR - 1
    raise ValueError(f"unknown threshold objective {objective!r}")


def test_scores(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    decision = p >= threshold
    return {
        "roc_auc": round(float(roc_auc_score(y, p)), 6),
        "average_precision": round(float(average_precision_score(y, p)), 6),
        "f1": round(float(f1_score(y, decision, zero_division=0.0)), 6),
        "precision": round(float(precision_score(y, decision, zero_division=0.0)), 6),
        "recall": round(float(recall_score(y, decision, zero_division=0.0)), 6),
        "positive_rate_predicted": round(float(decision.mean()), 6),
    }

"""Model selection by stratified k-fold CV and decision-threshold tuning on out-of-fold predictions.

The decision rule is ``p >= threshold`` everywhere. The tuned threshold is placed midway between two
neighbouring out-of-fold probabilities, so that no training probability sits exactly on it: tree
probabilities are multiples of 1/n_trees and would otherwise tie with the threshold.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

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

SCORERS = {
    "average_precision": lambda y, p: average_precision_score(y, p),
    "roc_auc": lambda y, p: roc_auc_score(y, p),
    "neg_log_loss": lambda y, p: -log_loss(y, p, labels=[0, 1]),
    "f1": lambda y, p: f1_score(y, p >= 0.5, zero_division=0.0),
    "balanced_accuracy": lambda y, p: balanced_accuracy_score(y, p >= 0.5),
}


@dataclass
class CVResult:
    family: str
    fold_scores: list[float]
    oof_probability: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_scores))


def _fit_predict(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, fit_idx, score_idx) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = clone(pipeline).fit(X.iloc[fit_idx], y[fit_idx])
    return model.predict_proba(X.iloc[score_idx])[:, 1]


def cross_validate(
    family: str,
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    folds: int,
    metric: str,
    seed: int,
    n_jobs: int = -1,
) -> CVResult:
    """Score ``pipeline`` on each fold and keep every out-of-fold probability."""
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y))
    probabilities = Parallel(n_jobs=n_jobs)(
        delayed(_fit_predict)(pipeline, X, y, fit_idx, score_idx) for fit_idx, score_idx in splits
    )
    oof = np.empty(len(y), dtype=np.float64)
    scores = []
    for (_, score_idx), proba in zip(splits, probabilities, strict=True):
        oof[score_idx] = proba
        scores.append(float(SCORERS[metric](y[score_idx], proba)))
    return CVResult(family=family, fold_scores=scores, oof_probability=oof)


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

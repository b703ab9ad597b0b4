"""The train stage for a fitted classifier you already have (train.fitted_model): no CV, no selection.

The model is loaded and checked, scored on the same held-out test split as a trained one, given a
threshold (tuned on that test split, or train.threshold as given), and shipped as its own file's bytes
(best_model.joblib is a copy, so its sha256 is the one of your file). What is then not measured: the
model's CV score, and whether it saw the test rows when it was fitted elsewhere; a threshold tuned on
the test split makes the test F1, precision and recall optimistic (ROC AUC and average precision
do not depend on the threshold). docs/models.md says so too.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onnxship.core.errors import UserError
from onnxship.core.params import TrainParams
from onnxship.train import factories, lineage, training

log = logging.getLogger("train")


@dataclass(frozen=True)
class Shipped:
    """The fitted model's bytes, its threshold, lineage.json, and the test labels and probabilities."""

    model_bytes: bytes
    threshold: float
    lineage: dict
    y_test: np.ndarray
    p_test: np.ndarray


def ship(dataset: lineage.Dataset, split: tuple[list[int], list[int]], tp: TrainParams) -> Shipped:
    """Check train.fitted_model, score it on the test split, choose its threshold, describe it."""
    path = str(tp.fitted_model)
    model = factories.load_fitted(path)
    positive = factories.positive_class(model.classes_, dataset.params.positive_label, path)
    idx_train, idx_test = split
    y_test = dataset.y[idx_test]
    p_test = probabilities(model, dataset, idx_test, positive, path)
    if tp.threshold is not None:
        threshold = tp.threshold
        objective_value = training.objective_at(y_test, p_test, threshold, tp.threshold_objective)
    else:
        threshold, objective_value = training.tune_threshold(y_test, p_test, tp.threshold_objective)
    scores = training.test_scores(y_test, p_test, threshold)
    model_bytes = Path(path).read_bytes()
    log.info("shipping train.fitted_model %s (no CV), threshold %.4f, test %s", path, threshold, scores)
    decisions = lineage.Decisions(
        screen=None,
        candidates={},
        selection={"rule": "none: train.fitted_model ships as given"},
        chosen=chosen(model, path, positive, model_bytes),
        threshold=threshold,
        objective_value=objective_value,
    )
    record = lineage.build(dataset, tp, (len(idx_train), len(idx_test)), decisions, scores, model_bytes)
    record["cv"] = {"skipped": "train.fitted_model was fitted elsewhere: nothing was cross-validated"}
    if tp.threshold is None:
        record["threshold"]["tuned_on"] = "test split (no out-of-fold probabilities without CV)"
    record["training_categories"] = lineage.training_categories(dataset.X.iloc[idx_train], dataset.roles)
    return Shipped(model_bytes, threshold, record, y_test, p_test)


def probabilities(model, dataset: lineage.Dataset, rows: list[int], positive, path: str) -> np.ndarray:
    """The positive class's probability of each of ``rows``; a UserError if the model cannot score
    the model input frame (float32 numbers with NaN, strings with "" for missing)."""
    column = [c.item() if isinstance(c, np.generic) else c for c in model.classes_].index(positive)
    try:
        return np.asarray(model.predict_proba(dataset.X.iloc[rows])[:, column], dtype=np.float64)
    except Exception as exc:  # the user's model: its own reason is the useful part
        raise UserError(
            f"train.fitted_model {path} cannot score the model "
            f"input frame ({type(exc).__name__}: {exc}); it must take the columns {dataset.roles.features} "
            'as float32 numbers (NaN for missing) and strings ("" for missing)'
        ) from None


def chosen(model, path: str, positive, model_bytes: bytes) -> dict:
    """lineage.json's record of the fitted model: where it came from, its sha256, its classes."""
    return {
        "family": "fitted_model",
        "source": path,
        "source_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "cross_validated": False,
        "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
        "positive_class": positive,
        "hyperparameters": factories.json_params(model),
        "iterations": training.fitted_iterations(model),
    }

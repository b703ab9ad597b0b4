"""The train stage's curves for `dvc plots show`: ROC and precision-recall on the test split.

They live with train, which owns them, so the train stage depends on nothing in verify/.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from onnxship.core.files import csv_text


def roc_csv(y: np.ndarray, p: np.ndarray, threshold: float) -> str:
    """ROC curve on the test split, plus one row (point=1) at the chosen threshold."""
    fpr, tpr, thresholds = roc_curve(y, p)
    decision = p >= threshold
    rows = [(f, t, 0, min(th, 1.0)) for f, t, th in zip(fpr, tpr, thresholds, strict=True)]
    rows.append((float(decision[y == 0].mean()), float(decision[y == 1].mean()), 1, threshold))
    return csv_text(["fpr", "tpr", "point", "threshold"], rows)


def pr_csv(y: np.ndarray, p: np.ndarray, threshold: float) -> str:
    """Precision-recall curve on the test split, plus one row (point=1) at the chosen threshold."""
    precision, recall, thresholds = precision_recall_curve(y, p)
    rows = [(r, pr, 0, th) for pr, r, th in zip(precision[:-1], recall[:-1], thresholds, strict=True)]
    decision = p >= threshold
    tp = float((decision & (y == 1)).sum())
    rows.append((tp / max(y.sum(), 1), tp / max(decision.sum(), 1), 1, threshold))
    return csv_text(["recall", "precision", "point", "threshold"], rows)

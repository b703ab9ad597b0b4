"""Data behind `dvc plots show`: small CSV files, written by the stages, drawn by dvc.yaml's plots."""

from __future__ import annotations

import numpy as np

# |diff| below this is drawn at this value: a log axis cannot show 0.
DIFF_FLOOR = 1e-9


def _csv(header: list[str], rows) -> str:
    lines = [",".join(header)]
    lines += [
        ",".join(repr(float(v)) if isinstance(v, float | np.floating) else str(v) for v in row)
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def roc_csv(y: np.ndarray, p: np.ndarray, threshold: float) -> str:
    """ROC curve on the test split, plus one row (point=1) at the chosen threshold."""
    # Imported here: the benchmark imports this module too, and its ONNX processes must not pay
    # for (or count the memory of) scikit-learn.
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(y, p)
    decision = p >= threshold
    rows = [(f, t, 0, min(th, 1.0)) for f, t, th in zip(fpr, tpr, thresholds, strict=True)]
    rows.append((float(decision[y == 0].mean()), float(decision[y == 1].mean()), 1, threshold))
    return _csv(["fpr", "tpr", "point", "threshold"], rows)


def pr_csv(y: np.ndarray, p: np.ndarray, threshold: float) -> str:
    """Precision-recall curve on the test split, plus one row (point=1) at the chosen threshold."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, p)
    rows = [(r, pr, 0, th) for pr, r, th in zip(precision[:-1], recall[:-1], thresholds, strict=True)]
    decision = p >= threshold
    tp = float((decision & (y == 1)).sum())
    rows.append((tp / max(y.sum(), 1), tp / max(decision.sum(), 1), 1, threshold))
    return _csv(["recall", "precision", "point", "threshold"], rows)


def prob_diff_csv(reference: np.ndarray, backends: dict[str, np.ndarray]) -> str:
    """|p_sklearn - p_backend| per row and backend, against the scikit-learn probability."""
    names = list(backends)
    diffs = [np.maximum(np.abs(reference - backends[n]), DIFF_FLOOR) for n in names]
    rows = [(float(reference[i]), *(float(d[i]) for d in diffs)) for i in range(len(reference))]
    return _csv(["p_sklearn", *names], rows)


def latency_csv(results: dict, backends: tuple[str, ...], threads: int) -> str:
    """p50 of the bare model call by batch size, one column per backend."""
    key = f"threads_{threads}"
    cells = results[backends[0]]["model"][key]
    rows = [
        (cell["batch_size"], *(results[b]["model"][key][batch]["p50_us"] for b in backends))
        for batch, cell in cells.items()
    ]
    return _csv(["batch_size", *backends], rows)

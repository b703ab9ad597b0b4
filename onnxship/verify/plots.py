"""Data behind `dvc plots show` from parity and the benchmark: small CSV files, drawn by dvc.yaml's plots.

The train stage's ROC and precision-recall curves are in onnxship/train/curves.py.
"""

from __future__ import annotations

import numpy as np

from onnxship.core.files import csv_text

# |diff| below this is drawn at this value: a log axis cannot show 0.
DIFF_FLOOR = 1e-9


def prob_diff_csv(reference: np.ndarray, backends: dict[str, np.ndarray]) -> str:
    """|p_sklearn - p_backend| per row and backend, against the scikit-learn probability."""
    names = list(backends)
    diffs = [np.maximum(np.abs(reference - backends[n]), DIFF_FLOOR) for n in names]
    rows = [(float(reference[i]), *(float(d[i]) for d in diffs)) for i in range(len(reference))]
    return csv_text(["p_sklearn", *names], rows)


def latency_csv(results: dict, backends: tuple[str, ...], threads: int) -> str:
    """p50 of the bare model call by batch size, one column per backend."""
    key = f"threads_{threads}"
    cells = results[backends[0]]["model"][key]
    rows = [
        (cell["batch_size"], *(results[b]["model"][key][batch]["p50_us"] for b in backends))
        for batch, cell in cells.items()
    ]
    return csv_text(["batch_size", *backends], rows)

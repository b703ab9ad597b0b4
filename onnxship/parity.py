"""Numerical agreement of a backend with scikit-learn, and the pass/fail verdict.

scikit-learn is the reference: the model the user validated, with the threshold train tuned.
Each backend is scored the way a client would score it, through the JSON contract, so a wrong
threshold, class column or input mapping in the contract shows up here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from onnxship.data import NUMERIC_MISSING

UNSEEN_CATEGORY = "__unseen_in_training__"


def edge_rows(base: pd.Series, features: dict, reference: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Rows that stress the contract, built from one real row (raw strings, as in the CSV).

    One row per case: an unseen category per categorical column, a missing value per column, and a
    value far above and far below the observed range per numeric column.
    """
    rows, cases = [], []

    def add(column: str, value: str, case: str) -> None:
        row = base.copy()
        row[column] = value
        rows.append(row)
        cases.append(f"{case}: {column}")

    for spec in features["inputs"]:
        name = spec["name"]
        if spec["role"] == "categorical":
            add(name, UNSEEN_CATEGORY, "unseen category")
        add(name, "", "missing value")
        if spec["role"] == "numeric":
            values = pd.to_numeric(reference[name].where(~reference[name].isin(NUMERIC_MISSING)))
            span = float(np.nanmax(np.abs(values))) if values.notna().any() else 1.0
            far = 1000.0 * (span + 1.0)
            add(name, repr(far), "far above range")
            add(name, repr(-far), "far below range")
    return pd.DataFrame(rows).reset_index(drop=True), cases


def compare(
    reference: np.ndarray,
    backend: np.ndarray,
    reference_threshold: float,
    backend_threshold: float,
    margin: float,
    cases: list[str],
    max_listed: int,
) -> dict:
    """Differences and decision flips of ``backend`` against ``reference`` probabilities."""
    diff = np.abs(reference - backend)
    ref_decision = reference >= reference_threshold
    flipped = np.flatnonzero(ref_decision != (backend >= backend_threshold))
    distance = np.abs(reference - reference_threshold)
    order = flipped[np.argsort(distance[flipped], kind="stable")]
    return {
        "rows": len(reference),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "abs_diff_quantiles": {q: float(np.quantile(diff, float(q))) for q in ("0.5", "0.9", "0.99")},
        "agreement": float(1.0 - len(flipped) / len(reference)),
        "flipped": len(flipped),
        "flipped_within_margin": int((distance[flipped] <= margin).sum()),
        "flipped_rows": [
            {
                "row": int(i),
                "case": cases[i],
                "p_sklearn": float(reference[i]),
                "p_backend": float(backend[i]),
                "distance_to_threshold": float(distance[i]),
            }
            for i in order[:max_listed]
        ],
    }


def verdict(comparison: dict, max_abs_diff: float, min_agreement: float) -> list[str]:
    """Why the backend fails its tolerances; empty if it passes."""
    reasons = []
    if comparison["max_abs_diff"] > max_abs_diff:
        reasons.append(
            f"max |p_sklearn - p_backend| {comparison['max_abs_diff']:.3g} > tolerance {max_abs_diff:.3g}"
        )
    if comparison["agreement"] < min_agreement:
        reasons.append(
            f"decision agreement {comparison['agreement']:.4%} < {min_agreement:.4%} "
            f"({comparison['flipped']} flipped, {comparison['flipped_within_margin']} within the margin)"
        )
    return reasons


def fragility(reference: np.ndarray, threshold: float, margin: float) -> dict:
    """How many reference decisions sit on or near the threshold (ties are reported, not hidden)."""
    distance = np.abs(reference - threshold)
    return {
        "within_margin": int((distance <= margin).sum()),
        "ties": int((reference == threshold).sum()),
    }

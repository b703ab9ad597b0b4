"""Numerical agreement of a backend with scikit-learn, and the pass/fail verdict.

scikit-learn is the reference: the model the user validated, with the threshold train tuned.
Each backend is scored the way a client would score it, through the JSON contract, so a wrong
threshold, class column or input mapping in the contract shows up here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from onnxship import contract, diagnose
from onnxship.data import NUMERIC_MISSING
from onnxship.params import ParityParams

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
            far = min(1000.0 * (span + 1.0), 1e30)  # far out, but still a finite float32
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
        "abs_diff_histogram": diff_histogram(diff),
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


HEADLINE = ("rows", "max_abs_diff", "agreement", "flipped")
DIFF_BINS = [0.0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]


def diff_histogram(diff: np.ndarray) -> list[dict]:
    """Row counts of |p_sklearn - p_backend| per decade: where the disagreement mass sits."""
    counts, _ = np.histogram(np.clip(diff, 0.0, 1.0), bins=DIFF_BINS)
    return [
        {"from": lo, "to": hi, "rows": int(n)}
        for lo, hi, n in zip(DIFF_BINS, DIFF_BINS[1:], counts, strict=False)
    ]


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


def check_backend(
    reference: np.ndarray,
    threshold: float,
    probability: np.ndarray,
    metadata: dict,
    tolerance: dict,
    margin: float,
    cases: list[str],
    max_listed: int,
    problems: list[str] | None = None,
) -> dict:
    """One backend's section of the report: its differences, its flips and its verdict.

    ``probability`` is what the backend gave when scored through the contract; ``problems`` are
    contract faults found elsewhere (e.g. a file hash that does not match the metadata).
    """
    reasons = list(problems or [])
    if metadata["threshold"] != threshold:
        reasons.append(f"metadata threshold {metadata['threshold']!r} != trained threshold {threshold!r}")
    pointed = metadata["class_order"][metadata["positive_class_index"]]
    if pointed != metadata["positive_label"]:
        reasons.append(
            f"metadata positive_class_index {metadata['positive_class_index']} points at class "
            f"{pointed!r}, not the positive label {metadata['positive_label']!r}"
        )
    result = compare(reference, probability, threshold, metadata["threshold"], margin, cases, max_listed)
    reasons += verdict(result, tolerance["max_abs_diff"], tolerance["min_agreement"])
    return {"passed": not reasons, "reasons": reasons, "tolerance": tolerance, **result}


def run_gate(
    pipeline,
    threshold: float,
    X: pd.DataFrame,
    cases: list[str],
    n_test: int,
    models: dict[str, str | bytes],
    features: dict,
    metadata: dict,
    params: ParityParams,
    problems: dict[str, list[str]] | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """The parity gate: score ``X`` with the scikit-learn ``pipeline`` and with each ONNX model
    through the contract, and judge each backend against its tolerances.

    The first ``n_test`` rows of ``X`` are held-out rows; the rest are edge rows. Every row is scored
    alone (batch 1), as an online service scores it: dynamic INT8 quantizes activations with a range
    taken from the whole batch, so in a batch one far-out row changes its neighbours' results. The
    held-out rows are also scored as one batch, and that must meet the same tolerances.

    Returns the report and each backend's per-row probabilities (scored alone), scikit-learn's too.
    """
    reference = pipeline.predict_proba(X)[:, list(pipeline.classes_).index(1)]
    inputs = contract.feeds(X, features)
    tolerances = {name: getattr(params.tolerances, name).model_dump() for name in models}
    results, probabilities = {}, {"sklearn": reference}
    for name, model in models.items():
        sess = contract.session(model)
        alone = np.concatenate(
            [
                contract.positive_probability(sess, {k: v[i : i + 1] for k, v in inputs.items()}, metadata)
                for i in range(len(X))
            ]
        )
        probabilities[name] = alone
        results[name] = check_backend(
            reference,
            threshold,
            alone,
            metadata,
            tolerances[name],
            params.margin,
            cases,
            params.max_rows_listed,
            (problems or {}).get(name),
        )
        subset = {"test_rows": slice(0, n_test), "edge_rows": slice(n_test, len(X))}
        for key, rows in subset.items():
            if rows.start == rows.stop:
                continue  # no edge rows (parity.edge_rows: false)
            part = compare(
                reference[rows], alone[rows], threshold, metadata["threshold"], params.margin, cases[rows], 0
            )
            results[name][key] = {k: part[k] for k in HEADLINE}
        batched = contract.positive_probability(sess, {k: v[:n_test] for k, v in inputs.items()}, metadata)
        batch = compare(
            reference[:n_test], batched, threshold, metadata["threshold"], params.margin, cases[:n_test], 0
        )
        results[name]["test_rows_one_batch"] = {k: batch[k] for k in HEADLINE}
        batch_reasons = verdict(batch, tolerances[name]["max_abs_diff"], tolerances[name]["min_agreement"])
        results[name]["reasons"] += [f"scored as one batch of {n_test} rows: {r}" for r in batch_reasons]
        results[name]["passed"] = not results[name]["reasons"]
        if params.diagnose == "always" or (params.diagnose == "on_failure" and not results[name]["passed"]):
            results[name]["diagnosis"] = diagnosis(
                pipeline, models, name, X, features, metadata, reference, alone, threshold, tolerances[name]
            )
    report = summarize(
        reference[:n_test], threshold, params.margin, len(reference) - n_test, results, params.int8_on_failure
    )
    return report, probabilities


def diagnosis(
    pipeline,
    models: dict[str, str | bytes],
    name: str,
    X: pd.DataFrame,
    features: dict,
    metadata: dict,
    reference: np.ndarray,
    probability: np.ndarray,
    threshold: float,
    tolerance: dict,
) -> dict:
    """Where backend ``name`` goes wrong (onnxship.diagnose); INT8 is also compared with FP32."""

    def read(model: str | bytes) -> bytes:
        return model if isinstance(model, bytes) else Path(model).read_bytes()

    return diagnose.diagnose(
        pipeline,
        read(models[name]),
        X,
        features,
        metadata,
        reference,
        probability,
        threshold,
        fp32_bytes=read(models["onnx"]) if name != "onnx" and "onnx" in models else None,
        tolerance=tolerance["max_abs_diff"],
        min_agreement=tolerance["min_agreement"],
    )


def summarize(
    test_reference: np.ndarray,
    threshold: float,
    margin: float,
    edge_rows: int,
    backends: dict[str, dict],
    int8_on_failure: str,
) -> dict:
    """The whole report. INT8 failing its tolerances fails the gate only if the policy says so;
    otherwise INT8 is marked not deployable and the gate still passes on FP32."""
    for result in backends.values():
        result["deployable"] = result["passed"]
    binding = [r["passed"] for n, r in backends.items() if n != "int8" or int8_on_failure == "fail"]
    return {
        "passed": all(binding),
        "threshold": threshold,
        "margin": margin,
        "int8_on_failure": int8_on_failure,
        "rows": {"test": len(test_reference), "edge": edge_rows},
        "fragile_test_rows": fragility(test_reference, threshold, margin),
        "backends": backends,
    }


def fragility(reference: np.ndarray, threshold: float, margin: float) -> dict:
    """How many reference decisions sit on or near the threshold (ties are reported, not hidden)."""
    distance = np.abs(reference - threshold)
    return {
        "within_margin": int((distance <= margin).sum()),
        "ties": int((reference == threshold).sum()),
    }

"""Stage 4, parity: scikit-learn vs ONNX FP32 vs ONNX INT8, on held-out and edge rows.

Reads params.yaml (parity), the train and export artifacts. Writes artifacts/parity_report.json
always, then exits 0 if every backend is within its tolerances and 1 if not.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from onnxship import contract, data, io, parity
from onnxship.cli import run
from onnxship.data import Roles
from onnxship.params import load_params

ARTIFACTS = Path("artifacts")
BACKENDS = {"onnx": ARTIFACTS / "model.onnx", "int8": ARTIFACTS / "model.int8.onnx"}
log = logging.getLogger("parity")


def main() -> int:
    params = load_params("params.yaml").parity
    lineage = io.read_json(ARTIFACTS / "lineage.json")
    features = io.read_json(ARTIFACTS / "onnx_features.json")
    metadata = io.read_json(ARTIFACTS / "onnx_metadata.json")
    pipeline = io.load_verified_joblib(ARTIFACTS / "best_model.joblib", lineage["model_sha256"])
    threshold = float((ARTIFACTS / "threshold.txt").read_text())
    roles = Roles(**lineage["roles"])

    raw = data.read_csv(ARTIFACTS / "test.csv")
    cases = [f"test row {i}" for i in range(len(raw))]
    if params.edge_rows:
        edges, edge_cases = parity.edge_rows(raw.iloc[0], features, raw)
        raw, cases = pd.concat([raw, edges], ignore_index=True), cases + edge_cases
    X = data.features(raw, roles)
    reference = pipeline.predict_proba(X)[:, list(pipeline.classes_).index(1)]
    test_reference = reference[: lineage["split"]["test_rows"]]

    report = {
        "passed": True,
        "threshold": threshold,
        "margin": params.margin,
        "rows": {"test": len(test_reference), "edge": int(len(reference) - len(test_reference))},
        "fragile_test_rows": parity.fragility(test_reference, threshold, params.margin),
        "backends": {},
    }
    for name, path in BACKENDS.items():
        tolerance = getattr(params.tolerances, name)
        reasons = contract_problems(metadata, threshold, path)
        sess = contract.session(str(path))
        probability = contract.positive_probability(sess, contract.feeds(X, features), metadata)
        result = parity.compare(
            reference,
            probability,
            threshold,
            metadata["threshold"],
            params.margin,
            cases,
            params.max_rows_listed,
        )
        reasons += parity.verdict(result, tolerance.max_abs_diff, tolerance.min_agreement)
        report["backends"][name] = {
            "passed": not reasons,
            "reasons": reasons,
            "tolerance": tolerance.model_dump(),
            **result,
        }
        report["passed"] &= not reasons
        log.info(
            "%s: max diff %.3g, agreement %.4f, %s",
            name,
            result["max_abs_diff"],
            result["agreement"],
            "; ".join(reasons) or "passed",
        )
    io.write_json(ARTIFACTS / "parity_report.json", report)
    return 0 if report["passed"] else 1


def contract_problems(metadata: dict, threshold: float, model_path: Path) -> list[str]:
    """What in the contract itself disagrees with what train produced."""
    problems = []
    if not np.isclose(metadata["threshold"], threshold, rtol=0, atol=1e-12):
        problems.append(f"metadata threshold {metadata['threshold']!r} != trained threshold {threshold!r}")
    if model_path.name == "model.onnx" and io.sha256_file(model_path) != metadata["model_sha256"]:
        problems.append("model.onnx sha256 differs from onnx_metadata.json")
    return problems


if __name__ == "__main__":
    run(main)

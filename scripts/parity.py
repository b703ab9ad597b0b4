"""Stage 4, parity: scikit-learn vs ONNX FP32 vs ONNX INT8, on held-out and edge rows.

Reads params.yaml (parity), the train and export artifacts. Writes artifacts/parity_report.json
always, then exits 0 if the gate passed and 1 if not.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from onnxship import data, diagnose, io, parity, plots
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

    raw = data.read_csv(ARTIFACTS / "test.csv")
    n_test = len(raw)
    cases = [f"test row {i}" for i in range(n_test)]
    if params.edge_rows:
        edges, edge_cases = parity.edge_rows(raw.iloc[0], features, raw)
        raw, cases = pd.concat([raw, edges], ignore_index=True), cases + edge_cases
    X = data.features(raw, Roles(**lineage["roles"]))
    problems = {}
    if io.sha256_file(BACKENDS["onnx"]) != metadata["model_sha256"]:
        problems["onnx"] = ["model.onnx sha256 differs from onnx_metadata.json"]
    models = {name: str(path) for name, path in BACKENDS.items()}
    report, probabilities = parity.run_gate(
        pipeline, threshold, X, cases, n_test, models, features, metadata, params, problems
    )
    for name, result in report["backends"].items():
        log.info(
            "%s: max diff %.3g, agreement %.4f, %s",
            name,
            result["max_abs_diff"],
            result["agreement"],
            "; ".join(result["reasons"]) or "passed",
        )
        for line in diagnose.log_lines(result.get("diagnosis", {})):
            log.warning("%s diagnosis: %s", name, line)
    io.write_json(ARTIFACTS / "parity_report.json", report)
    reference = probabilities.pop("sklearn")
    io.atomic_write_text(ARTIFACTS / "plots" / "prob_diff.csv", plots.prob_diff_csv(reference, probabilities))
    if not report["backends"]["int8"]["deployable"] and params.int8_on_failure == "not_deployable":
        log.warning("INT8 is outside its tolerances: marked not deployable (parity.int8_on_failure)")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    run(main)

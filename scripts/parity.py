"""Stage 4, parity: scikit-learn vs ONNX FP32 vs ONNX INT8, on held-out and edge rows.

Reads params.yaml (parity), train's outputs (lineage.json, the verified best_model.joblib,
threshold.txt, test.csv), export's contract files and the INT8 file with its quantize_report.json.
Each ONNX backend is loaded as a client loads it and scores the raw rows through the shipped scorer
(onnxship.verify.gate). Writes artifacts/parity_report.json and plots/prob_diff.csv always, then
exits 0 if the gate passed and 1 if not.
"""

from __future__ import annotations

from onnxship.core import files
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run
from onnxship.verify import gate

ARTIFACTS = Artifacts()


def main() -> int:
    params = load_params("params.yaml").parity
    result = gate.run(ARTIFACTS, params)
    files.write_json(ARTIFACTS.parity_report, result.report)
    files.atomic_write_text(ARTIFACTS.plot("prob_diff.csv"), result.prob_diff_csv)
    return 0 if result.passed else 1


if __name__ == "__main__":
    run(main)

"""Stage 1, train: compare candidate pipelines by CV, tune the threshold, refit the best.

Reads params.yaml (data, train) and the CSV at data.path. Writes artifacts/best_model.joblib,
artifacts/threshold.txt, artifacts/lineage.json, artifacts/test.csv (the held-out rows, raw),
artifacts/calibration.csv (a sample of training rows, raw, for quantize) and the ROC and
precision-recall curves under artifacts/plots/. The work is ``onnxship.train.run.train``.
"""

from __future__ import annotations

from onnxship.convert.support import check_convertible
from onnxship.core import files
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run
from onnxship.train import curves, data
from onnxship.train.run import train

ARTIFACTS = Artifacts()


def main() -> None:
    params = load_params("params.yaml")
    frame = data.read_csv(params.data.path)
    result = train(frame, params.data, params.train, check_convertible)
    files.atomic_write_bytes(ARTIFACTS.model_joblib, result.model_bytes)
    files.atomic_write_text(ARTIFACTS.threshold, f"{result.threshold!r}\n")
    files.atomic_write_text(ARTIFACTS.test_csv, frame.iloc[result.test_rows].to_csv(index=False))
    calibration = frame.iloc[result.calibration_rows]
    files.atomic_write_text(ARTIFACTS.calibration_csv, calibration.to_csv(index=False))
    files.write_json(ARTIFACTS.lineage, result.lineage)
    y, p = result.y_test, result.p_test
    files.atomic_write_text(ARTIFACTS.plot("roc.csv"), curves.roc_csv(y, p, result.threshold))
    files.atomic_write_text(ARTIFACTS.plot("pr.csv"), curves.pr_csv(y, p, result.threshold))


if __name__ == "__main__":
    run(main)

"""Stage 2, export: the trained pipeline as ONNX, plus its JSON contract.

Reads params.yaml (export), artifacts/best_model.joblib (verified against lineage.json),
artifacts/threshold.txt. Writes artifacts/model.onnx, artifacts/onnx_features.json,
artifacts/onnx_metadata.json. Both JSON files are validated against their schemas (schemas/)
before anything is written.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnx

from onnxship import export, io, schema
from onnxship.cli import run
from onnxship.data import Roles
from onnxship.params import load_params

ARTIFACTS = Path("artifacts")
log = logging.getLogger("export")


def main() -> None:
    params = load_params("params.yaml").export
    lineage = io.read_json(ARTIFACTS / "lineage.json")
    pipeline = io.load_verified_joblib(ARTIFACTS / "best_model.joblib", lineage["model_sha256"])
    threshold = float((ARTIFACTS / "threshold.txt").read_text())
    roles = Roles(**lineage["roles"])

    model = export.convert(
        pipeline, roles, params.target_opset, params.linear_as_matmul, params.converter_modules
    )
    onnx.checker.check_model(model, full_check=True)
    model_bytes = model.SerializeToString()
    features = export.feature_schema(model, roles, pipeline)
    features_bytes = io.json_bytes(features)
    metadata = export.metadata(model, model_bytes, pipeline, lineage, threshold, features_bytes)
    # The contract is checked before any file is written: a client never sees an invalid one.
    schema.validate(features, "onnx_features")
    schema.validate(metadata, "onnx_metadata")
    io.atomic_write_bytes(ARTIFACTS / "model.onnx", model_bytes)
    io.atomic_write_bytes(ARTIFACTS / "onnx_features.json", features_bytes)
    io.write_json(ARTIFACTS / "onnx_metadata.json", metadata)
    log.info("wrote model.onnx (%d bytes, opsets %s)", len(model_bytes), metadata["opsets"])


if __name__ == "__main__":
    run(main)

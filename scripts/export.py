"""Stage 2, export: the trained pipeline as ONNX, plus its JSON contract.

Reads params.yaml (export) and train's outputs: best_model.joblib (verified against lineage.json) and
threshold.txt (which must be the tuned threshold lineage.json records). Writes artifacts/model.onnx,
artifacts/onnx_features.json, artifacts/onnx_metadata.json. Both JSON files are validated against
their schemas (schemas/) before anything is written.
"""

from __future__ import annotations

import logging

import onnx

from onnxship.convert import export, schema
from onnxship.core import files
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run
from onnxship.train.lineage import load_trained

ARTIFACTS = Artifacts()
log = logging.getLogger("export")


def main() -> None:
    params = load_params("params.yaml").export
    trained, _ = load_trained(ARTIFACTS)
    model = export.convert(
        trained.pipeline,
        trained.roles,
        params.target_opset,
        params.linear_as_matmul,
        params.converter_modules,
    )
    onnx.checker.check_model(model, full_check=True)
    model_bytes = model.SerializeToString()
    features = export.feature_schema(model, trained.roles, trained.pipeline)
    features_bytes = files.json_bytes(features)
    metadata = export.metadata(
        model, model_bytes, trained.pipeline, trained.lineage, trained.threshold, features_bytes
    )
    # The contract is checked before any file is written: a client never sees an invalid one.
    schema.validate(features, "onnx_features")
    schema.validate(metadata, "onnx_metadata")
    files.atomic_write_bytes(ARTIFACTS.model_onnx, model_bytes)
    files.atomic_write_bytes(ARTIFACTS.features, features_bytes)
    files.write_json(ARTIFACTS.metadata, metadata)
    log.info("wrote model.onnx (%d bytes, opsets %s)", len(model_bytes), metadata["opsets"])


if __name__ == "__main__":
    run(main)

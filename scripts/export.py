"""Stage 2, export: the trained pipeline as ONNX, plus its JSON contract.

Reads params.yaml (export) and train's outputs: best_model.joblib (verified against lineage.json) and
threshold.txt (which must be the tuned threshold lineage.json records). Writes artifacts/model.onnx,
artifacts/onnx_features.json, artifacts/onnx_metadata.json. The work is
``onnxship.convert.export.build``, which validates both JSON files against their schemas (schemas/)
before anything is written.
"""

from __future__ import annotations

import logging

from onnxship.convert import export
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
    exported = export.build(trained, params)
    files.atomic_write_bytes(ARTIFACTS.model_onnx, exported.model_bytes)
    files.atomic_write_bytes(ARTIFACTS.features, exported.features_bytes)
    files.write_json(ARTIFACTS.metadata, exported.metadata)
    log.info("wrote model.onnx (%d bytes, opsets %s)", len(exported.model_bytes), exported.metadata["opsets"])


if __name__ == "__main__":
    run(main)

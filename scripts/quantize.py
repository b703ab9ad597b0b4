"""Stage 3, quantize: ONNX Runtime INT8 quantization (dynamic or static QDQ), with a measured
search for the nodes that must stay FP32.

Reads params.yaml (quantize; parity.tolerances.int8 as the search's target and parity.max_edge_rows
for the edge rows), artifacts/model.onnx, onnx_features.json, onnx_metadata.json and
artifacts/calibration.csv (training rows written by train; never the test rows). Writes
artifacts/model.int8.onnx and artifacts/quantize_report.json (which nodes are quantized and why the
others are not, the block split plan, the drift measured on calibration and edge rows, the sizes and
both files' sha256, which the parity gate checks).
"""

from __future__ import annotations

import logging

from onnxship.convert.quantize_run import Options, from_artifacts
from onnxship.core import files
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run

ARTIFACTS = Artifacts()
log = logging.getLogger("quantize")


def main() -> None:
    params = load_params("params.yaml")
    options = Options.from_params(params.quantize, params.parity.tolerances.int8, params.parity.max_edge_rows)
    result = from_artifacts(ARTIFACTS, options)
    files.atomic_write_bytes(ARTIFACTS.model_int8, result.int8_bytes)
    files.write_json(ARTIFACTS.quantize_report, result.report)
    log.info(result.statement)


if __name__ == "__main__":
    run(main)

"""Stage 3, quantize: ONNX Runtime dynamic INT8 quantization (weights only).

Reads params.yaml (quantize) and artifacts/model.onnx. Writes artifacts/model.int8.onnx and
artifacts/quantize_report.json (what was quantized, the file sizes and both files' sha256, which the
parity gate checks).
"""

from __future__ import annotations

import hashlib
import logging

from onnxship.convert.quantize import quantize, quantized_nodes, read_model
from onnxship.core import files
from onnxship.core.errors import UserError
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run

ARTIFACTS = Artifacts()
log = logging.getLogger("quantize")


def main() -> None:
    params = load_params("params.yaml").quantize
    source = ARTIFACTS.model_onnx
    if not source.exists():
        raise UserError(f"{source} not found: run the export stage first (dvc repro)")
    fp32_bytes = source.read_bytes()
    fp32 = read_model(fp32_bytes, source)
    int8 = quantize(fp32, params.weight_type, params.per_channel, params.reduce_range)
    int8_bytes = int8.SerializeToString()
    by_op = quantized_nodes(fp32, int8)
    total = sum(by_op.values())
    statement = (
        f"{total} node(s) quantized; INT8 file is {len(int8_bytes) / len(fp32_bytes):.0%} of FP32"
        if total
        else "nothing was quantizable: INT8 equals FP32 for this model"
    )
    report = {
        "weight_type": params.weight_type,
        "per_channel": params.per_channel,
        "reduce_range": params.reduce_range,
        "nodes_quantized": total,
        "nodes_quantized_by_op": dict(sorted(by_op.items())),
        "fp32_bytes": len(fp32_bytes),
        "int8_bytes": len(int8_bytes),
        "size_ratio": round(len(int8_bytes) / len(fp32_bytes), 4),
        "fp32_sha256": hashlib.sha256(fp32_bytes).hexdigest(),
        "int8_sha256": hashlib.sha256(int8_bytes).hexdigest(),
        "statement": statement,
    }
    files.atomic_write_bytes(ARTIFACTS.model_int8, int8_bytes)
    files.write_json(ARTIFACTS.quantize_report, report)
    log.info(statement)


if __name__ == "__main__":
    run(main)

"""Stage 3, quantize: ONNX Runtime dynamic INT8 quantization (weights only).

Reads params.yaml (quantize) and artifacts/model.onnx. Writes artifacts/model.int8.onnx and
artifacts/quantize_report.json (what was quantized, and the file sizes).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnx

from onnxship import io
from onnxship.cli import run
from onnxship.errors import UserError
from onnxship.params import load_params
from onnxship.quantize import quantize, quantized_nodes

ARTIFACTS = Path("artifacts")
log = logging.getLogger("quantize")


def main() -> None:
    params = load_params("params.yaml").quantize
    source = ARTIFACTS / "model.onnx"
    if not source.exists():
        raise UserError(f"{source} not found: run the export stage first (dvc repro)")
    fp32 = onnx.load(source)
    int8 = quantize(fp32, params.weight_type, params.per_channel, params.reduce_range)
    int8_bytes = int8.SerializeToString()
    by_op = quantized_nodes(fp32, int8)
    total = sum(by_op.values())
    fp32_size = source.stat().st_size
    statement = (
        f"{total} node(s) quantized; INT8 file is {len(int8_bytes) / fp32_size:.0%} of FP32"
        if total
        else "nothing was quantizable: INT8 equals FP32 for this model"
    )
    report = {
        "weight_type": params.weight_type,
        "per_channel": params.per_channel,
        "reduce_range": params.reduce_range,
        "nodes_quantized": total,
        "nodes_quantized_by_op": dict(sorted(by_op.items())),
        "fp32_bytes": fp32_size,
        "int8_bytes": len(int8_bytes),
        "size_ratio": round(len(int8_bytes) / fp32_size, 4),
        "statement": statement,
    }
    io.atomic_write_bytes(ARTIFACTS / "model.int8.onnx", int8_bytes)
    io.write_json(ARTIFACTS / "quantize_report.json", report)
    log.info(statement)


if __name__ == "__main__":
    run(main)

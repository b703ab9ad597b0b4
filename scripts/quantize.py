"""Stage 3, quantize: ONNX Runtime INT8 quantization (dynamic or static QDQ), with a measured
search for the nodes that must stay FP32.

Reads params.yaml (quantize, and parity.tolerances.int8 as the search's target),
artifacts/model.onnx, onnx_features.json, onnx_metadata.json and artifacts/calibration.csv
(training rows written by train; never the test rows). Writes artifacts/model.int8.onnx and
artifacts/quantize_report.json (which nodes are quantized and why the others are not, sizes,
the drift measured on calibration and edge rows).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnx

from onnxship import data, io
from onnxship.cli import run
from onnxship.errors import UserError
from onnxship.params import load_params
from onnxship.quantize_search import Settings, Target, search, search_rows

ARTIFACTS = Path("artifacts")
log = logging.getLogger("quantize")


def main() -> None:
    all_params = load_params("params.yaml")
    params, tolerance = all_params.quantize, all_params.parity.tolerances.int8
    source = ARTIFACTS / "model.onnx"
    for path, stage in ((source, "export"), (ARTIFACTS / "calibration.csv", "train")):
        if not path.exists():
            raise UserError(f"{path} not found: run the {stage} stage first (dvc repro)")
    fp32 = onnx.load(source)
    features = io.read_json(ARTIFACTS / "onnx_features.json")
    metadata = io.read_json(ARTIFACTS / "onnx_metadata.json")
    rows = search_rows(data.read_csv(ARTIFACTS / "calibration.csv"), features, fp32, metadata)
    headroom = params.search_headroom
    target = Target(
        max_abs_diff=tolerance.max_abs_diff * headroom,
        min_agreement=1.0 - (1.0 - tolerance.min_agreement) * headroom,
    )
    settings = Settings(
        mode=params.mode,
        weight_type=params.weight_type,
        per_channel=params.per_channel,
        reduce_range=params.reduce_range,
        split_blocks=params.split_blocks,
        exclude_search=params.exclude_search,
    )
    int8, found = search(fp32, rows, target, settings)
    int8_bytes = int8.SerializeToString()
    fp32_size = source.stat().st_size
    quantized = [n for n in found["nodes"] if n["quantized"]]
    final = found["final"]
    statement = (
        f"{len(quantized)} of {len(found['nodes'])} MatMul/Gemm node(s) quantized ({params.mode}); "
        f"INT8 file is {len(int8_bytes) / fp32_size:.0%} of FP32; on {rows.calibration} calibration + "
        f"{len(rows.reference) - rows.calibration} edge rows vs FP32: max diff "
        f"{final['alone']['max_abs_diff']:.3g} row by row, {final['batch']['max_abs_diff']:.3g} as a batch"
        if quantized
        else "nothing quantized (no MatMul/Gemm, or none within the target): INT8 computes what FP32 does"
    )
    report = {
        "mode": params.mode,
        "weight_type": params.weight_type,
        "per_channel": params.per_channel,
        "reduce_range": params.reduce_range,
        "split_blocks": params.split_blocks,
        "exclude_search": params.exclude_search,
        "target": {
            "vs": "onnx fp32",
            "max_abs_diff": target.max_abs_diff,
            "min_agreement": target.min_agreement,
            "headroom": headroom,
        },
        "rows": {"calibration": rows.calibration, "edge": len(rows.reference) - rows.calibration},
        "nodes_quantized": len(quantized),
        "nodes": found["nodes"],
        "search": found["search"],
        "final": final,
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

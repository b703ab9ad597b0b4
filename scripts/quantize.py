"""Stage 3, quantize: ONNX Runtime INT8 quantization (dynamic or static QDQ), with a measured
search for the nodes that must stay FP32.

Reads params.yaml (quantize; parity.tolerances.int8 as the search's target and parity.max_edge_rows
for the edge rows), artifacts/model.onnx, onnx_features.json, onnx_metadata.json and
artifacts/calibration.csv (training rows written by train; never the test rows). Writes
artifacts/model.int8.onnx and artifacts/quantize_report.json (which nodes are quantized and why the
others are not, the drift measured on calibration and edge rows, the sizes and both files' sha256,
which the parity gate checks).
"""

from __future__ import annotations

import hashlib
import logging

from onnxship.convert.edge_rows import edge_rows
from onnxship.convert.quantize import read_model
from onnxship.convert.quantize_search import Settings, Target, search, search_rows
from onnxship.core import files
from onnxship.core.errors import UserError
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run
from onnxship.train import data

ARTIFACTS = Artifacts()
log = logging.getLogger("quantize")


def main() -> None:
    all_params = load_params("params.yaml")
    params = all_params.quantize
    tolerance = all_params.parity.tolerances.int8
    max_edge_rows = all_params.parity.max_edge_rows
    for path, stage in ((ARTIFACTS.model_onnx, "export"), (ARTIFACTS.calibration_csv, "train")):
        if not path.exists():
            raise UserError(f"{path} not found: run the {stage} stage first (dvc repro)")
    fp32_bytes = ARTIFACTS.model_onnx.read_bytes()
    fp32 = read_model(fp32_bytes, ARTIFACTS.model_onnx)
    features = files.read_json(ARTIFACTS.features)
    metadata = files.read_json(ARTIFACTS.metadata)
    raw = data.read_csv(ARTIFACTS.calibration_csv)
    edges, _ = edge_rows(raw.iloc[0], features, raw, max_edge_rows)
    rows = search_rows(raw, features, fp32, metadata, edges)
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
    quantized = [n for n in found["nodes"] if n["quantized"]]
    final = found["final"]
    statement = (
        f"{len(quantized)} of {len(found['nodes'])} MatMul/Gemm node(s) quantized ({params.mode}); "
        f"INT8 file is {len(int8_bytes) / len(fp32_bytes):.0%} of FP32; on {rows.calibration} "
        f"calibration + {len(rows.reference) - rows.calibration} edge rows vs FP32: max diff "
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
        "split_plan": found["split_plan"],
        "search": found["search"],
        "final": final,
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

"""The quantize stage as one function: export's FP32 model and train's calibration rows in, the
INT8 model and quantize_report.json out.

``scripts/quantize.py`` reads the params, calls ``from_artifacts`` (the files, then
``quantize_model``) and writes what it returns. The search itself is
onnxship.convert.quantize_search; this module builds its rows and target from the params and writes
down what it decided.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
import pandas as pd

from onnxship.contract import cpu
from onnxship.convert.edge_rows import edge_rows
from onnxship.convert.kernel_families import proof
from onnxship.convert.quantize import quantizable_nodes, read_model
from onnxship.convert.quantize_search import Rows, Settings, Target, search, search_rows
from onnxship.core import files
from onnxship.core.errors import UserError
from onnxship.core.params import QuantizeParams, Tolerance
from onnxship.core.paths import Artifacts
from onnxship.train import table


@dataclass(frozen=True)
class QuantizeInput:
    """What the stage reads: export's model and contract files, train's calibration rows."""

    fp32_bytes: bytes
    source: Path  # where fp32_bytes came from, for messages
    features: dict  # onnx_features.json
    metadata: dict  # onnx_metadata.json
    calibration: pd.DataFrame  # training rows as read from calibration.csv (raw strings)


@dataclass(frozen=True)
class Options:
    """The search's settings and target, and how many edge rows to add to the calibration rows;
    ``reduce_range_setting`` is the param as given (auto, true or false), resolved in ``settings``."""

    settings: Settings
    target: Target
    headroom: float
    max_edge_rows: int
    reduce_range_setting: bool | str = False

    @classmethod
    def from_params(cls, params: QuantizeParams, tolerance: Tolerance, max_edge_rows: int) -> Options:
        """``params`` is params.yaml's quantize section; ``tolerance`` the gate's INT8 tolerances,
        which the search must meet with ``search_headroom`` to spare; ``max_edge_rows`` the gate's."""
        headroom = params.search_headroom
        target = Target(
            max_abs_diff=tolerance.max_abs_diff * headroom,
            min_agreement=1.0 - (1.0 - tolerance.min_agreement) * headroom,
        )
        settings = Settings(
            mode=params.mode,
            weight_type=params.weight_type,
            per_channel=params.per_channel,
            reduce_range=resolve_reduce_range(params.reduce_range, params.weight_type),
            split_blocks=params.split_blocks,
            exclude_search=params.exclude_search,
        )
        return cls(settings, target, headroom, max_edge_rows, params.reduce_range)


def resolve_reduce_range(setting: bool | str, weight_type: str) -> bool:
    """``quantize.reduce_range``: auto means 7-bit weights for QInt8 (u8s8 kernels, which saturate
    without VNNI) and 8-bit for QUInt8 (u8u8 kernels widen before they add, exact on every CPU)."""
    return weight_type == "QInt8" if setting == "auto" else bool(setting)


@dataclass(frozen=True)
class QuantizeResult:
    int8_bytes: bytes
    report: dict  # quantize_report.json
    statement: str  # one line for the log


def from_artifacts(paths: Artifacts, options: Options) -> QuantizeResult:
    """The quantize stage: read what export and train wrote under ``paths`` and quantize it. A
    graph with nothing to quantize returns at once, before the calibration rows are even read."""
    if paths.model_onnx.exists():
        fp32_bytes = paths.model_onnx.read_bytes()
        if not quantizable_nodes(read_model(fp32_bytes, paths.model_onnx)):
            return nothing_to_quantize(fp32_bytes, options)
    return quantize_model(load_input(paths), options)


def nothing_to_quantize(fp32_bytes: bytes, options: Options) -> QuantizeResult:
    """The INT8 file of a graph without a MatMul/Gemm on a float weight (trees, ai.onnx.ml ops only):
    model.onnx itself, byte for byte. ONNX Runtime's quantizer would only rewrite it unchanged in
    substance, and the search would score thousands of rows to find nothing: on a 1,500-column tree
    model that cost minutes. The report has the usual keys; nothing was searched or measured."""
    digest = hashlib.sha256(fp32_bytes).hexdigest()
    statement = (
        "nothing to quantize (no MatMul/Gemm with a float weight in model.onnx): model.int8.onnx is "
        "model.onnx byte for byte, so INT8 computes exactly what FP32 does"
    )
    body = {
        **asdict(options.settings),
        "reduce_range_setting": options.reduce_range_setting,
        "cpu": cpu.features(),  # recorded as in a searched report, though nothing here depends on it
        "kernel_families": {"proof": proof(onnx.ModelProto.FromString(fp32_bytes)), "final": {}},
        "target": target_record(options),
        "rows": {"calibration": 0, "edge": 0},
        "nodes_quantized": 0,
        "nodes": [],
        "split_plan": [],
        "search": [],
        "search_skipped": "no quantizable node",
        "final": {"identical_to_fp32": True, "passed": True},
        "fp32_bytes": len(fp32_bytes),
        "int8_bytes": len(fp32_bytes),
        "size_ratio": 1.0,
        "fp32_sha256": digest,
        "int8_sha256": digest,
        "statement": statement,
    }
    return QuantizeResult(fp32_bytes, body, statement)


def target_record(options: Options) -> dict:
    """The report's "target": what the search must reach against FP32."""
    return {
        "vs": "onnx fp32",
        "max_abs_diff": options.target.max_abs_diff,
        "min_agreement": options.target.min_agreement,
        "headroom": options.headroom,
    }


def load_input(paths: Artifacts) -> QuantizeInput:
    """Export's model and contract files and train's calibration rows, or a one-line error naming
    the stage to run when one is missing."""
    for path, stage in ((paths.model_onnx, "export"), (paths.calibration_csv, "train")):
        if not path.exists():
            raise UserError(f"{path} not found: run the {stage} stage first (dvc repro)")
    return QuantizeInput(
        fp32_bytes=paths.model_onnx.read_bytes(),
        source=paths.model_onnx,
        features=files.read_json(paths.features),
        metadata=files.read_json(paths.metadata),
        calibration=table.read_csv(paths.calibration_csv),
    )


def quantize_model(inputs: QuantizeInput, options: Options) -> QuantizeResult:
    """Search which MatMul/Gemm nodes may be INT8 on the calibration rows plus the gate's edge rows
    built from them, and report the decision (see onnxship.convert.quantize_search)."""
    fp32 = read_model(inputs.fp32_bytes, inputs.source)
    if not quantizable_nodes(fp32):
        return nothing_to_quantize(inputs.fp32_bytes, options)
    raw = inputs.calibration
    edges, _ = edge_rows(raw.iloc[0], inputs.features, raw, options.max_edge_rows)
    rows = search_rows(raw, inputs.features, fp32, inputs.metadata, edges)
    int8, found = search(fp32, rows, options.target, options.settings)
    int8_bytes = int8.SerializeToString()
    return QuantizeResult(int8_bytes, *report(inputs.fp32_bytes, int8_bytes, rows, found, options))


def report(
    fp32_bytes: bytes, int8_bytes: bytes, rows: Rows, found: dict, options: Options
) -> tuple[dict, str]:
    """quantize_report.json (the parity gate checks its ``int8_sha256``) and its one-line statement."""
    quantized = [n for n in found["nodes"] if n["quantized"]]
    final = found["final"]
    statement = (
        f"{len(quantized)} of {len(found['nodes'])} MatMul/Gemm node(s) quantized ({options.settings.mode}); "
        f"INT8 file is {len(int8_bytes) / len(fp32_bytes):.0%} of FP32; on {rows.calibration} "
        f"calibration + {len(rows.reference) - rows.calibration} edge rows vs FP32: max diff "
        f"{final['alone']['max_abs_diff']:.3g} row by row, {final['batch']['max_abs_diff']:.3g} as a batch"
        if quantized
        else "nothing quantized (no MatMul/Gemm, or none within the target): INT8 computes what FP32 does"
    )
    int8 = onnx.ModelProto.FromString(int8_bytes)
    body = {
        **asdict(options.settings),
        "reduce_range_setting": options.reduce_range_setting,
        # The CPU the search measured on: it selects ONNX Runtime's integer kernels (onnxship.contract.cpu).
        "cpu": cpu.features(),
        "kernel_families": {"proof": proof(int8), "final": final.get("kernel_families", {})},
        "target": target_record(options),
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
    return body, statement

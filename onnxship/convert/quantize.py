"""INT8 quantization with ONNX Runtime that works on what skl2onnx really emits, and says what it did.

Only MatMul/Gemm nodes are quantized. ai.onnx.ml ops (Scaler, LinearClassifier,
TreeEnsembleClassifier) are left as they are, so for linear and tree models as skl2onnx exports
them the INT8 file computes exactly what the FP32 file does; the report says so instead of
implying a speed-up.

Two modes:
- dynamic: weights INT8, activations quantized at run time with the range of the batch being
  scored (so a row's result can depend on its neighbours);
- static (QDQ): activation ranges calibrated once on training rows, so each row's result is
  independent of its batch.

A MatMul fed by the preprocessing Concat can first be split into one MatMul per input block
(onnxship.convert.block_split), so that the search (onnxship.convert.quantize_search) decides per block.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from onnxship.convert.graph import copy_model, normalize, producers
from onnxship.core.errors import UserError


def read_model(data: bytes, source: Path) -> onnx.ModelProto:
    """The ONNX model in ``data`` (read from ``source``), checked; a clear error for a truncated or
    foreign file instead of protobuf's DecodeError."""
    try:
        model = onnx.ModelProto.FromString(data)
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf's DecodeError, onnx's ValidationError
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"{source} is not a valid ONNX model ({detail[:200]}): re-run the export stage (dvc repro)"
        ) from None
    return model


QUANTIZED_OPS = ["MatMul", "Gemm"]


def dedupe_opset_imports(model: onnx.ModelProto) -> onnx.ModelProto:
    """Keep one opset import per domain (the highest version).

    skl2onnx can import the default domain twice ('' and 'ai.onnx'); quantize_dynamic then fails
    with "Failed to find proper ai.onnx domain" (onnxruntime#15563).
    """
    best: dict[str, int] = {}
    for opset in model.opset_import:
        domain = "" if opset.domain == "ai.onnx" else opset.domain
        best[domain] = max(best.get(domain, 0), opset.version)
    del model.opset_import[:]
    for domain, version in sorted(best.items()):
        model.opset_import.append(onnx.helper.make_opsetid(domain, version))
    return model


class FeedsReader(CalibrationDataReader):
    """Calibration batches for quantize_static: the given ONNX feeds, ``batch`` rows at a time."""

    def __init__(self, feeds: Mapping[str, np.ndarray], batch: int = 256):
        rows = len(next(iter(feeds.values())))
        self._batches = iter([{k: v[i : i + batch] for k, v in feeds.items()} for i in range(0, rows, batch)])

    def get_next(self) -> dict | None:
        return next(self._batches, None)


@dataclass(frozen=True)
class Quantization:
    """How ONNX Runtime quantizes (params.yaml's quantize section has the same names)."""

    weight_type: str = "QInt8"  # QuantType name: QInt8 or QUInt8 (params.yaml's default: QUInt8)
    per_channel: bool = False
    reduce_range: bool = False  # 7-bit weights: no u8s8 saturation on CPUs without VNNI
    mode: str = "dynamic"  # or "static" (QDQ, activation ranges calibrated once)


def quantize(
    model: onnx.ModelProto,
    how: Quantization,
    nodes_to_exclude: Iterable[str] = (),
    calibration: Mapping[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """INT8 weights for every MatMul/Gemm of ``model`` except ``nodes_to_exclude``; the input model
    is not modified. Static mode needs ``calibration`` (ONNX feeds of training rows)."""
    fixed = dedupe_opset_imports(copy_model(model))
    common = {
        "op_types_to_quantize": QUANTIZED_OPS,
        "nodes_to_exclude": sorted(nodes_to_exclude),
        "weight_type": QuantType[how.weight_type],
        "per_channel": how.per_channel,
        "reduce_range": how.reduce_range,
        # Weights that follow an ai.onnx.ml op have no inferred type; without this the
        # quantizer fails with "Unable to find data type for weight_name".
        "extra_options": {"DefaultTensorType": onnx.TensorProto.FLOAT},
    }
    # The quantizer logs advice through the root logger on every call ("consider pre-processing",
    # "quantization parameters ... not specified" for the nodes we exclude on purpose): noise here.
    logging.disable(logging.WARNING)
    try:
        return _quantize_file(fixed, how.mode, calibration, common)
    finally:
        logging.disable(logging.NOTSET)


def _quantize_file(
    fixed: onnx.ModelProto, mode: str, calibration: Mapping[str, np.ndarray] | None, common: dict
) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "fp32.onnx"), Path(tmp, "int8.onnx")
        onnx.save(fixed, source)
        if mode == "dynamic":
            quantize_dynamic(source, target, **common)
        elif mode == "static":
            if calibration is None:
                raise ValueError("static quantization needs calibration rows")
            quantize_static(
                source,
                target,
                FeedsReader(calibration),
                quant_format=QuantFormat.QDQ,
                # U8 activations, S8 weights: ORT's recommended CPU pairing (see quantize_static).
                activation_type=QuantType.QUInt8,
                **common,
            )
        else:
            raise ValueError(f"unknown quantization mode {mode!r}")
        return normalize(onnx.load(target))


def quantized_nodes(fp32: onnx.ModelProto, int8: onnx.ModelProto) -> Counter:
    """FP32 nodes, by op type, that the INT8 graph computes differently (see ``is_quantized``)."""
    writers = producers(int8.graph)
    return Counter(node.op_type for node in fp32.graph.node if is_quantized(node, writers))


def quantized_node_names(fp32: onnx.ModelProto, int8: onnx.ModelProto) -> list[str]:
    """Names of the FP32 MatMul/Gemm nodes that are quantized in ``int8`` (see ``is_quantized``)."""
    writers = producers(int8.graph)
    return [
        node.name for node in fp32.graph.node if node.op_type in QUANTIZED_OPS and is_quantized(node, writers)
    ]


def is_quantized(node: onnx.NodeProto, int8_producers: Mapping[str, onnx.NodeProto]) -> bool:
    """Whether the INT8 graph (given as its producer map) computes FP32 ``node`` differently.

    A node counts as quantized when the op that produces its first output in the INT8 graph is
    not the same op type (e.g. MatMul -> MatMulInteger + dequantizing Mul), or when one of its
    inputs passes through a DequantizeLinear (static QDQ keeps the MatMul, fed by DQ nodes).
    """
    producer = int8_producers.get(node.output[0])
    return (
        producer is None
        or producer.op_type != node.op_type
        or any(
            int8_producers.get(name) is not None and int8_producers[name].op_type == "DequantizeLinear"
            for name in producer.input
        )
    )


def quantizable_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """MatMul/Gemm nodes whose second input is a float weight stored in the model."""
    weights = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    return [n for n in model.graph.node if n.op_type in QUANTIZED_OPS and n.input[1] in weights]

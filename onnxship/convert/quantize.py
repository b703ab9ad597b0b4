"""Dynamic INT8 quantization that works on what skl2onnx really emits, and says what it did.

Dynamic quantization only rewrites MatMul-like ops. ai.onnx.ml ops (Scaler, LinearClassifier,
TreeEnsembleClassifier) are left as they are, so for linear and tree models the INT8 file computes
exactly what the FP32 file does; the report says so instead of implying a speed-up.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from onnxship.convert.graph import normalize
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


def quantize(
    model: onnx.ModelProto, weight_type: str, per_channel: bool, reduce_range: bool
) -> onnx.ModelProto:
    """INT8 weights for every quantizable op of ``model``; the input model is not modified."""
    fixed = dedupe_opset_imports(onnx.ModelProto.FromString(model.SerializeToString()))
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "fp32.onnx"), Path(tmp, "int8.onnx")
        onnx.save(fixed, source)
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType[weight_type],
            per_channel=per_channel,
            reduce_range=reduce_range,
            # Weights that follow an ai.onnx.ml op have no inferred type; without this the
            # quantizer fails with "Unable to find data type for weight_name".
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        return normalize(onnx.load(target))


def quantized_nodes(fp32: onnx.ModelProto, int8: onnx.ModelProto) -> Counter:
    """FP32 nodes, by op type, that the INT8 graph computes differently.

    A node counts as quantized when the op that produces its first output in the INT8 graph is
    not the same op type (e.g. MatMul -> MatMulInteger + dequantizing Mul).
    """
    producers = {out: node.op_type for node in int8.graph.node for out in node.output}
    return Counter(node.op_type for node in fp32.graph.node if producers.get(node.output[0]) != node.op_type)

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

``split_block_matmuls`` first splits a MatMul fed by a Concat (the ColumnTransformer output) into
one MatMul per block (numeric block, one-hot block), summed: the one-hot block is bounded in [0, 1]
and quantizes almost exactly, while a numeric block can carry far-out values whose products with
rounded weights are off by a lot. The search (onnxship.convert.quantize_search) then decides per block.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from onnxship.convert.graph import graph_order, normalize, prune_unused
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


def quantize(
    model: onnx.ModelProto,
    weight_type: str,
    per_channel: bool,
    reduce_range: bool,
    mode: str = "dynamic",
    nodes_to_exclude: Iterable[str] = (),
    calibration: Mapping[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """INT8 weights for every MatMul/Gemm of ``model`` except ``nodes_to_exclude``; the input model
    is not modified. ``mode="static"`` needs ``calibration`` (ONNX feeds of training rows)."""
    fixed = dedupe_opset_imports(onnx.ModelProto.FromString(model.SerializeToString()))
    common = {
        "op_types_to_quantize": QUANTIZED_OPS,
        "nodes_to_exclude": sorted(nodes_to_exclude),
        "weight_type": QuantType[weight_type],
        "per_channel": per_channel,
        "reduce_range": reduce_range,
        # Weights that follow an ai.onnx.ml op have no inferred type; without this the
        # quantizer fails with "Unable to find data type for weight_name".
        "extra_options": {"DefaultTensorType": onnx.TensorProto.FLOAT},
    }
    # The quantizer logs advice through the root logger on every call ("consider pre-processing",
    # "quantization parameters ... not specified" for the nodes we exclude on purpose): noise here.
    logging.disable(logging.WARNING)
    try:
        return _quantize_file(fixed, mode, calibration, common)
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


def fold_fp32_block_sums(model: onnx.ModelProto) -> onnx.ModelProto:
    """After quantization: where a split node's Sum adds an FP32 block MatMul to the quantized
    block(s), compute that block as ``Gemm(x, W, C=rest)`` instead of MatMul + Sum (one pass over the
    [batch, units] output less; the INT8 file is then no slower than needed). In place."""
    producers = {out: node for node in model.graph.node for out in node.output}
    readers = Counter(name for node in model.graph.node for name in node.input)
    weights = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    for node in list(model.graph.node):
        if node.op_type != "Sum" or not node.name.endswith("_sum") or len(node.input) != 2:
            continue
        for k, name in enumerate(node.input):
            block = producers.get(name)
            plain = block is not None and block.op_type == "MatMul" and block.input[1] in weights
            if not plain or readers[name] != 1:
                continue
            rest, output = node.input[1 - k], node.output[0]
            position = list(model.graph.node).index(node)
            model.graph.node.remove(node)
            model.graph.node.remove(block)
            bias = _bias_add(model, output, weights)
            if bias is not None:
                # Add the bias to the INT8 block's result instead, where ONNX Runtime fuses it into
                # the quantized MatMul; the Gemm then writes the bias Add's output directly.
                other = next(i for i in bias.input if i != output)
                model.graph.node.remove(bias)
                biased = f"{rest}_bias"
                model.graph.node.insert(
                    position - 1, onnx.helper.make_node("Add", [rest, other], [biased], name=biased)
                )
                rest, output = biased, bias.output[0]
            gemm = onnx.helper.make_node(
                "Gemm", [block.input[0], block.input[1], rest], [output], name=block.name
            )
            model.graph.node.insert(position, gemm)
            break
    return graph_order(model)


def _bias_add(model: onnx.ModelProto, tensor: str, weights: set[str]) -> onnx.NodeProto | None:
    """The Add that is the only reader of ``tensor`` and adds a stored float vector to it."""
    readers = [n for n in model.graph.node if tensor in n.input]
    if len(readers) != 1 or readers[0].op_type != "Add" or tensor in {o.name for o in model.graph.output}:
        return None
    other = [i for i in readers[0].input if i != tensor]
    return readers[0] if len(other) == 1 and other[0] in weights else None


def quantized_nodes(fp32: onnx.ModelProto, int8: onnx.ModelProto) -> Counter:
    """FP32 nodes, by op type, that the INT8 graph computes differently.

    A node counts as quantized when the op that produces its first output in the INT8 graph is
    not the same op type (e.g. MatMul -> MatMulInteger + dequantizing Mul), or when one of its
    inputs passes through a DequantizeLinear (static QDQ keeps the MatMul, fed by DQ nodes).
    """
    producers = {out: node for node in int8.graph.node for out in node.output}
    counted: Counter = Counter()
    for node in fp32.graph.node:
        producer = producers.get(node.output[0])
        if (
            producer is None
            or producer.op_type != node.op_type
            or any(
                producers.get(name) is not None and producers[name].op_type == "DequantizeLinear"
                for name in producer.input
            )
        ):
            counted[node.op_type] += 1
    return counted


def quantized_node_names(fp32: onnx.ModelProto, int8: onnx.ModelProto) -> list[str]:
    """Names of the FP32 MatMul/Gemm nodes that are quantized in ``int8`` (same rule as above)."""
    names = []
    for node in fp32.graph.node:
        if node.op_type in QUANTIZED_OPS:
            single = onnx.ModelProto()
            single.graph.node.append(node)
            if sum(quantized_nodes(single, int8).values()):
                names.append(node.name)
    return names


# --- splitting a MatMul by input block ------------------------------------------------------------


def quantizable_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """MatMul/Gemm nodes whose second input is a float weight stored in the model."""
    weights = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    return [n for n in model.graph.node if n.op_type in QUANTIZED_OPS and n.input[1] in weights]


def _concat_source(model: onnx.ModelProto, tensor: str) -> tuple[onnx.NodeProto | None, list]:
    """The Concat (along the last axis) that produces ``tensor``, directly or through Casts."""
    producers = {out: node for node in model.graph.node for out in node.output}
    casts = []
    node = producers.get(tensor)
    while node is not None and node.op_type == "Cast":
        casts.append(node)
        node = producers.get(node.input[0])
    if node is None or node.op_type != "Concat":
        return None, []
    axis = next((a.i for a in node.attribute if a.name == "axis"), None)
    return (node, casts) if axis in (1, -1) and len(node.input) > 1 else (None, [])


def block_widths(model: onnx.ModelProto, tensors: list[str]) -> dict[str, int]:
    """Column count of each named 2-D float tensor, found by running the model on one dummy row
    (ai.onnx.ml ops carry no shape information that onnx shape inference can use)."""
    import onnxruntime as ort

    probe = onnx.ModelProto.FromString(model.SerializeToString())
    for name in tensors:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    feeds = {}
    for graph_input in model.graph.input:
        elem = graph_input.type.tensor_type.elem_type
        if elem == onnx.TensorProto.STRING:
            feeds[graph_input.name] = np.array([["x"]], dtype=object)
        else:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
            feeds[graph_input.name] = np.zeros((1, 1), dtype=dtype)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    values = sess.run(tensors, feeds)
    return {name: int(np.asarray(v).reshape(1, -1).shape[1]) for name, v in zip(tensors, values, strict=True)}


def graph_inputs_of(model: onnx.ModelProto, tensor: str) -> list[str]:
    """The graph inputs that ``tensor`` is computed from (in graph input order)."""
    producers = {out: node for node in model.graph.node for out in node.output}
    seen, todo, found = set(), [tensor], set()
    inputs = [i.name for i in model.graph.input]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in inputs:
            found.add(name)
        node = producers.get(name)
        if node is not None:
            todo.extend(node.input)
    return [name for name in inputs if name in found]


def split_block_matmuls(
    model: onnx.ModelProto, only: Iterable[str] | None = None
) -> tuple[onnx.ModelProto, list[dict]]:
    """Split each MatMul fed by a Concat of blocks into one MatMul per block, added up.

    ``x @ W == sum_k x_k @ W_k`` where ``x_k`` are the concatenated blocks and ``W_k`` the matching
    rows of ``W``: the same function, but each block's weights can now be quantized or kept on
    their own. Returns the new model (the input is not modified) and one description per new node.
    ``only`` limits the split to the named MatMul nodes.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    weights = {i.name: i for i in model.graph.initializer}
    wanted = None if only is None else set(only)
    plans = []
    for node in quantizable_nodes(model):
        if node.op_type != "MatMul" or (wanted is not None and node.name not in wanted):
            continue
        concat, casts = _concat_source(model, node.input[0])
        if concat is not None:
            plans.append((node, concat, casts))
    if not plans:
        return model, []
    widths = block_widths(model, sorted({b for _, concat, _ in plans for b in concat.input}))
    described = []
    for node, concat, casts in plans:
        weight = numpy_helper.to_array(weights[node.input[1]])
        if sum(widths[b] for b in concat.input) != weight.shape[0]:
            continue  # not the plain block layout we understand: leave the node alone
        new_nodes, parts, offset = [], [], 0
        for k, block in enumerate(concat.input):
            width = widths[block]
            source = block
            for j, cast in enumerate(reversed(casts)):
                cast_out = f"{node.name}_block{k}_cast{j}"
                new_nodes.append(
                    onnx.helper.make_node("Cast", [source], [cast_out], name=cast_out, to=_cast_to(cast))
                )
                source = cast_out
            w_name = f"{node.input[1]}_block{k}"
            model.graph.initializer.append(
                numpy_helper.from_array(np.ascontiguousarray(weight[offset : offset + width]), w_name)
            )
            part_name = f"{node.name}_block{k}"
            new_nodes.append(onnx.helper.make_node("MatMul", [source, w_name], [part_name], name=part_name))
            parts.append(part_name)
            described.append(
                {
                    "node": part_name,
                    "split_from": node.name,
                    "rows": [offset, offset + width],
                    "inputs": graph_inputs_of(model, block),
                }
            )
            offset += width
        new_nodes.append(onnx.helper.make_node("Sum", parts, list(node.output), name=f"{node.name}_sum"))
        position = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        for j, new in enumerate(new_nodes):
            model.graph.node.insert(position + j, new)
    prune_unused(model)  # the Concat and Casts that fed the split node, if nothing else reads them
    return model, described


def _cast_to(cast: onnx.NodeProto) -> int:
    return next(a.i for a in cast.attribute if a.name == "to")

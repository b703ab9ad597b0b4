"""An INT8 graph on both families of ONNX Runtime's u8s8 integer kernels (onnxship.contract.cpu).

A quantized MatMul multiplies uint8 activations by int8 weights. Without VNNI, x86 CPUs add each
pair of adjacent products into a saturating int16; with VNNI (or on ARM) the sums are exact. So one
INT8 file can give two answers, and a gate run on one CPU says nothing about the other by itself.
Two ways to know both answers on one machine:

- ``proof``: when every integer MatMul has uint8 weights (the u8u8 kernels widen first, exact
  everywhere) or int8 weights within [-64, 64] (``reduce_range``: a pair of products is at most
  2 * 255 * 64 = 32,640, which int16 holds), both families compute the same integers; the graph
  says so and nothing needs to run twice.
- ``emulate``: otherwise, a twin of the graph in which each integer MatMul is computed in float64
  the other family's way (exact sums, or pairs of products clipped to int16 and then summed), which
  ONNX Runtime runs like any graph. The twin of this machine's own family gives the integers the
  native kernels give (tests/test_kernel_families.py checks it against them and against onnx's
  reference evaluator), so the twin of the other family stands in for a CPU we do not have.

Handles what the quantize stage writes: dynamic MatMulInteger and static QDQ MatMuls (uint8
activations). Any other integer op makes ``integer_matmuls`` name it, and the gate fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxship.contract import cpu
from onnxship.convert.graph import copy_model, graph_order, producers, prune_unused

INT16 = (-32768, 32767)
# Integer ops ONNX Runtime runs with MLAS's u8s8/u8u8 GEMM that ``emulate`` does not rewrite.
OTHER_INTEGER_OPS = {
    "ConvInteger",
    "QLinearConv",
    "QLinearMatMul",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "QGemm",
    "QAttention",
    "DynamicQuantizeLSTM",
}


@dataclass(frozen=True)
class IntegerMatMul:
    """One quantized MatMul: its node, the uint8 activation tensor and zero point (tensor names),
    the integer weights and their zero point (arrays), and for QDQ the two scale tensors."""

    node: onnx.NodeProto
    activation: str
    activation_zero_point: str
    weights: np.ndarray
    weights_zero_point: np.ndarray
    scales: tuple[str, str] | None = None  # QDQ: activation scale, weight scale

    def worst_pair(self) -> int:
        """The largest |u8 * w + u8 * w| two adjacent products can reach (what int16 must hold)."""
        return int(2 * 255 * np.abs(self.weights.astype(np.int32)).max(initial=0))

    def exact_everywhere(self) -> bool:
        return self.weights.dtype == np.uint8 or self.worst_pair() <= INT16[1]


def integer_matmuls(model: onnx.ModelProto) -> tuple[list[IntegerMatMul], list[str]]:
    """The graph's quantized MatMuls, and the integer nodes this module cannot reason about."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    writers = producers(model.graph)
    found, unknown = [], []
    for node in model.graph.node:
        if node.op_type == "MatMulInteger" and node.input[1] in inits:
            zero = node.input[3] if len(node.input) > 3 and node.input[3] else None
            weights = inits[node.input[1]]
            wzp = inits[zero] if zero else np.zeros((), weights.dtype)
            azp = node.input[2] if len(node.input) > 2 else ""
            found.append(IntegerMatMul(node, node.input[0], azp, weights, wzp))
        elif node.op_type == "MatMul" and all(
            getattr(writers.get(name), "op_type", None) == "DequantizeLinear" for name in node.input
        ):
            dq_a, dq_w = (writers[name] for name in node.input)
            if dq_w.input[0] not in inits:
                unknown.append(f"{node.name} (QDQ MatMul without constant weights)")
                continue
            weights = inits[dq_w.input[0]]
            wzp = inits[dq_w.input[2]] if len(dq_w.input) > 2 else np.zeros((), weights.dtype)
            azp = dq_a.input[2] if len(dq_a.input) > 2 else ""
            found.append(
                IntegerMatMul(node, dq_a.input[0], azp, weights, wzp, (dq_a.input[1], dq_w.input[1]))
            )
        elif node.op_type in OTHER_INTEGER_OPS or (node.op_type == "MatMulInteger"):
            unknown.append(f"{node.name} ({node.op_type})")
    return found, unknown


def proof(model: onnx.ModelProto) -> dict:
    """Whether the graph computes the same integers on both kernel families, and why."""
    matmuls, unknown = integer_matmuls(model)
    nodes = [
        {
            "node": m.node.name,
            "weights": str(m.weights.dtype),
            "max_abs_weight": int(np.abs(m.weights.astype(np.int32)).max(initial=0)),
            "worst_pair_sum": m.worst_pair(),
            "exact_everywhere": m.exact_everywhere(),
        }
        for m in matmuls
    ]
    same = not unknown and all(n["exact_everywhere"] for n in nodes)
    if unknown:
        why = f"integer ops this check cannot reason about: {', '.join(unknown)}"
    elif same:
        why = (
            "every quantized MatMul has uint8 weights or int8 weights within [-64, 64]: a pair of "
            "u8 x s8 products fits int16, so the saturating kernels compute the exact integers"
            if nodes
            else "no quantized MatMul: INT8 computes what FP32 does"
        )
    else:
        wide = [n["node"] for n in nodes if not n["exact_everywhere"]]
        why = f"8-bit weights in {', '.join(wide)}: pairs of products can exceed int16 without VNNI"
    return {"same_on_both_families": same, "why": why, "unsupported": unknown, "matmuls": nodes}


def emulate(model: onnx.ModelProto, family: str) -> onnx.ModelProto:
    """A copy of the INT8 ``model`` whose quantized MatMuls compute what ``family``'s kernels do
    (cpu.EXACT or cpu.SATURATING), in float64 ops any runtime runs the same way."""
    if family not in cpu.FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}")
    twin = copy_model(model)
    matmuls, unknown = integer_matmuls(twin)
    if unknown:
        raise ValueError(f"cannot emulate {', '.join(unknown)}")
    for m in matmuls:
        nodes, inits = _emulated(m, family)
        position = list(twin.graph.node).index(m.node)
        twin.graph.node.remove(m.node)
        for offset, node in enumerate(nodes):
            twin.graph.node.insert(position + offset, node)
        twin.graph.initializer.extend(inits)
    return graph_order(prune_unused(twin))


def _emulated(m: IntegerMatMul, family: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes and initializers that write ``m``'s output the way ``family`` computes it."""
    p = f"{m.node.name}_{family.replace('-', '_')}"
    if m.weights.dtype == np.uint8:
        family = cpu.EXACT  # u8u8 kernels widen to int16 before they multiply: exact on every family
    w = m.weights.astype(np.float64)
    wzp = m.weights_zero_point.astype(np.float64)
    k = w.shape[0]
    inits = [
        numpy_helper.from_array(w.sum(axis=0), f"{p}_colsum"),
        numpy_helper.from_array(wzp, f"{p}_wzp"),
        numpy_helper.from_array(np.asarray(k * wzp, np.float64), f"{p}_k_wzp"),
    ]
    azp = [helper.make_node("Cast", [m.activation_zero_point], [f"{p}_azp"], to=TensorProto.DOUBLE)]
    if not m.activation_zero_point:
        inits.append(numpy_helper.from_array(np.zeros((), np.float64), f"{p}_azp"))
        azp = []
    nodes = [helper.make_node("Cast", [m.activation], [f"{p}_a"], to=TensorProto.DOUBLE), *azp]
    raw, raw_inits = _raw_sum(p, w, family)
    nodes += raw
    inits += raw_inits
    # sum (a - azp)(w - wzp) = sum a*w - azp * colsum(w) - wzp * rowsum(a) + k * azp * wzp:
    # MLAS sums the raw products (where pairs may saturate) and adds the zero-point terms exactly.
    nodes += [
        helper.make_node("Mul", [f"{p}_azp", f"{p}_colsum"], [f"{p}_t1"]),
        helper.make_node("ReduceSum", [f"{p}_a", f"{p}_axis1"], [f"{p}_rowsum"], keepdims=1),
        helper.make_node("Mul", [f"{p}_rowsum", f"{p}_wzp"], [f"{p}_t2"]),
        helper.make_node("Mul", [f"{p}_azp", f"{p}_k_wzp"], [f"{p}_t3"]),
        helper.make_node("Sub", [f"{p}_raw", f"{p}_t1"], [f"{p}_s1"]),
        helper.make_node("Sub", [f"{p}_s1", f"{p}_t2"], [f"{p}_s2"]),
        helper.make_node("Add", [f"{p}_s2", f"{p}_t3"], [f"{p}_sum"]),
    ]
    inits.append(numpy_helper.from_array(np.array([1], np.int64), f"{p}_axis1"))
    out = m.node.output[0]
    if m.scales is None:  # MatMulInteger: int32 out
        nodes.append(helper.make_node("Cast", [f"{p}_sum"], [out], to=TensorProto.INT32))
    else:  # QDQ MatMul: float out, the two scales applied
        a_scale, w_scale = m.scales
        nodes += [
            helper.make_node("Cast", [f"{p}_sum"], [f"{p}_sumf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [a_scale, w_scale], [f"{p}_scale"]),
            helper.make_node("Mul", [f"{p}_sumf", f"{p}_scale"], [out]),
        ]
    return nodes, inits


def _raw_sum(p: str, w: np.ndarray, family: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes writing ``{p}_raw`` = sum over k of a[:, k] * w[k, :] (a is ``{p}_a``, float64): one
    exact MatMul, or, for the saturating family, each pair (k = 2j, 2j + 1) summed, clipped to int16
    as vpmaddubsw does, then the pairs summed (exactly, as vpmaddwd does)."""
    if family == cpu.EXACT:
        return [helper.make_node("MatMul", [f"{p}_a", f"{p}_w"], [f"{p}_raw"])], [
            numpy_helper.from_array(w, f"{p}_w")
        ]
    k, pairs = w.shape[0], (w.shape[0] + 1) // 2
    even, odd = np.zeros((k, pairs)), np.zeros((k, pairs))  # pick a's columns 2j and 2j + 1
    even[np.arange(0, k, 2), np.arange(pairs)] = 1.0
    odd[np.arange(1, k, 2), np.arange(k // 2)] = 1.0
    w_odd = np.zeros((pairs, w.shape[1]))
    w_odd[: k // 2] = w[1::2]
    inits = [
        numpy_helper.from_array(even, f"{p}_pick_even"),
        numpy_helper.from_array(odd, f"{p}_pick_odd"),
        numpy_helper.from_array(np.ascontiguousarray(w[0::2]), f"{p}_w_even"),
        numpy_helper.from_array(w_odd, f"{p}_w_odd"),
        numpy_helper.from_array(np.array([2], np.int64), f"{p}_axis2"),
        numpy_helper.from_array(np.array(INT16[0], np.float64), f"{p}_lo"),
        numpy_helper.from_array(np.array(INT16[1], np.float64), f"{p}_hi"),
    ]
    nodes = [
        helper.make_node("MatMul", [f"{p}_a", f"{p}_pick_even"], [f"{p}_a_even"]),
        helper.make_node("MatMul", [f"{p}_a", f"{p}_pick_odd"], [f"{p}_a_odd"]),
        helper.make_node("Unsqueeze", [f"{p}_a_even", f"{p}_axis2"], [f"{p}_a_even3"]),
        helper.make_node("Unsqueeze", [f"{p}_a_odd", f"{p}_axis2"], [f"{p}_a_odd3"]),
        helper.make_node("Mul", [f"{p}_a_even3", f"{p}_w_even"], [f"{p}_prod_even"]),
        helper.make_node("Mul", [f"{p}_a_odd3", f"{p}_w_odd"], [f"{p}_prod_odd"]),
        helper.make_node("Add", [f"{p}_prod_even", f"{p}_prod_odd"], [f"{p}_pair"]),
        helper.make_node("Clip", [f"{p}_pair", f"{p}_lo", f"{p}_hi"], [f"{p}_pair16"]),
        helper.make_node("ReduceSum", [f"{p}_pair16", f"{p}_axis1"], [f"{p}_raw"], keepdims=0),
    ]
    return nodes, inits


def family_models(
    model: onnx.ModelProto, native: str | None = None
) -> dict[str, tuple[onnx.ModelProto, str]]:
    """What to score for each kernel family, and how it stands for that family: the model itself
    on this machine's family ("native"), or when ``proof`` holds ("same integers"); else the
    ``emulate``d twin ("emulated"). ``native`` defaults to this machine's (cpu.family())."""
    native = cpu.family() if native is None else native
    same = proof(model)["same_on_both_families"]
    out = {}
    for family in cpu.FAMILIES:
        if family == native:
            out[family] = (model, "native")
        elif same:
            out[family] = (
                model,
                "same integers as the native kernels (proof)"
                if native in cpu.FAMILIES
                else "same integers on both families (proof)",
            )
        else:
            out[family] = (emulate(model, family), "emulated")
    return out

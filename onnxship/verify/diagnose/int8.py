"""An INT8 backend against its FP32 graph: nodes that are neither FP32 nodes nor quantization
nodes, and, per quantized node, how far the drift drops when that node alone is put back to FP32."""

from __future__ import annotations

import numpy as np
import onnx

from onnxship.convert.graph import producers, put_back
from onnxship.convert.quantize import is_quantized
from onnxship.verify.diagnose import messages
from onnxship.verify.diagnose.records import Finding
from onnxship.verify.diagnose.restore import Examined
from onnxship.verify.diagnose.tensors import session

QUANTIZATION_OPS = {
    "DynamicQuantizeLinear",
    "QuantizeLinear",
    "DequantizeLinear",
    "MatMulInteger",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "QLinearMatMul",
    "QGemm",
    "Cast",
    "Mul",
    "Sum",
}


def int8_findings(
    int8: onnx.ModelProto, fp32: onnx.ModelProto, rows: Examined, split_nodes: frozenset[str] = frozenset()
) -> tuple[list[Finding], list[dict]]:
    """Foreign nodes in the INT8 graph, and per quantized FP32 node the drift left when that node
    alone is put back to FP32 (rows scored one at a time, as the gate scores them)."""
    findings = foreign_nodes(int8, fp32, split_nodes)
    drift = node_drift(int8, fp32, rows)
    base_diff = float(np.abs(scored_alone(int8, rows) - rows.reference).max())
    for d in drift:
        if d["max_abs_diff_if_fp32"] is not None and d["max_abs_diff_if_fp32"] < 0.5 * base_diff:
            message = messages.quantized_node(d["node"], base_diff, d)
            findings.append(Finding("int8", "int8 graph", "quantized node", message, node=d["node"]))
    return findings, drift


def foreign_nodes(
    int8: onnx.ModelProto, fp32: onnx.ModelProto, split_nodes: frozenset[str] = frozenset()
) -> list[Finding]:
    """INT8 nodes that are neither FP32 nodes, nor made by quantization, nor added by the quantize
    stage's block split (``split_nodes``, from its plan: no node name is parsed)."""
    known = {n.name for n in fp32.graph.node} | split_nodes
    found = []
    for node in int8.graph.node:
        if node.name in known or node.op_type in QUANTIZATION_OPS:
            continue
        message = messages.foreign_node(node.op_type, list(node.output))
        found.append(Finding("int8", "int8 graph", "foreign node", message, node=node.name or node.op_type))
    return found


def node_drift(int8: onnx.ModelProto, fp32: onnx.ModelProto, rows: Examined) -> list[dict]:
    """Per quantized FP32 MatMul/Gemm: max diff and flips when it alone is FP32, smallest first."""
    writers = producers(int8.graph)
    drift = []
    for node in fp32.graph.node:
        if node.op_type not in ("MatMul", "Gemm") or writers.get(node.output[0]) is None:
            continue
        if not is_quantized(node, writers):  # the quantize report's own rule
            continue
        try:
            p = scored_alone(put_back(int8, fp32, node), rows)
        except Exception:
            drift.append({"node": node.name, "max_abs_diff_if_fp32": None})
            continue
        outcome = rows.outcome(p)
        drift.append(
            {
                "node": node.name,
                "max_abs_diff_if_fp32": outcome["max_abs_diff"],
                "flipped_if_fp32": outcome["flipped"],
            }
        )
    drift.sort(key=lambda d: d["max_abs_diff_if_fp32"] if d["max_abs_diff_if_fp32"] is not None else 1.0)
    return drift


def scored_alone(model: onnx.ModelProto, rows: Examined) -> np.ndarray:
    """Positive probabilities of ``model`` on the examined rows, each row scored alone."""
    sess = session(model)
    n = len(next(iter(rows.feeds.values())))
    out = [sess.run(["probabilities"], {k: v[i : i + 1] for k, v in rows.feeds.items()})[0] for i in range(n)]
    return np.concatenate(out)[:, rows.positive].astype(np.float64)

"""Edits to ONNX graphs that every stage writing an ONNX file needs."""

from __future__ import annotations

import onnx


def normalize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make the serialized model byte-identical across runs.

    skl2onnx writes opset_import in an order that depends on Python's hash seed.
    """
    ordered = sorted(model.opset_import, key=lambda o: (o.domain, o.version))
    del model.opset_import[:]
    model.opset_import.extend(ordered)
    return model


def prune_unused(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop, in place, the nodes whose outputs nothing reads (repeatedly), then the initializers no
    node reads. Graph surgery leaves such nodes behind, and ONNX Runtime would still run them."""
    outputs = {o.name for o in model.graph.output}
    while True:
        used = {name for node in model.graph.node for name in node.input} | outputs
        dead = [n for n in model.graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for node in dead:
            model.graph.node.remove(node)
    used = {name for node in model.graph.node for name in node.input}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    return model


def graph_order(model: onnx.ModelProto) -> onnx.ModelProto:
    """Sort nodes so that each comes after the producers of its inputs (ONNX requires it)."""
    available = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    pending, ordered = list(model.graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError(f"graph has a cycle or a missing input near node {pending[0].name!r}")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
            pending.remove(node)
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return model

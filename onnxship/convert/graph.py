"""Walks of and edits to ONNX graphs: what every stage writing an ONNX file needs, and the probes
the parity diagnosis builds (extra outputs, a graph cut at a tensor, one node put back)."""

from __future__ import annotations

import math

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


def producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    """{tensor name: the node that writes it}."""
    return {out: node for node in graph.node for out in node.output}


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    return onnx.ModelProto.FromString(model.SerializeToString())


def with_outputs(model: onnx.ModelProto, names: dict[str, int]) -> onnx.ModelProto:
    """A copy of ``model`` that also outputs the named intermediate tensors ({name: elem type})."""
    probe = copy_model(model)
    present = {o.name for o in probe.graph.output}
    for name, elem in names.items():
        if name not in present:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
    return probe


def downstream(model: onnx.ModelProto, tensor: str, elem: int) -> onnx.ModelProto:
    """``model`` with ``tensor`` fed from outside: its producer (and whatever only fed that) cut."""
    part = copy_model(model)
    keep = [n for n in part.graph.node if tensor not in n.output]
    del part.graph.node[:]
    part.graph.node.extend(keep)
    part.graph.input.append(onnx.helper.make_tensor_value_info(tensor, elem, None))
    prune_unused(part)
    return part


def nodes_between(model: onnx.ModelProto, inputs: list[str], outputs: list[str]) -> set[str]:
    """Names (op type if unnamed) of the nodes that compute ``outputs`` from ``inputs``."""
    writers = producers(model.graph)
    seen, todo, names = set(), list(outputs), set()
    while todo:
        name = todo.pop()
        if name in seen or name in inputs:
            continue
        seen.add(name)
        node = writers.get(name)
        if node is not None:
            names.add(node.name or node.op_type)
            todo += list(node.input)
    return names


def put_back(model: onnx.ModelProto, source: onnx.ModelProto, node: onnx.NodeProto) -> onnx.ModelProto:
    """A copy of ``model`` with ``node`` (a node of ``source``, e.g. the FP32 graph) in place of
    whatever computes its first output, with the initializers it reads from ``source``."""
    edited = copy_model(model)
    target = node.output[0]
    keep = [n for n in edited.graph.node if target not in n.output]
    position = len(keep)
    for i, old in enumerate(edited.graph.node):
        if target in old.output:
            position = min(position, i)
    del edited.graph.node[:]
    edited.graph.node.extend(keep)
    edited.graph.node.insert(min(position, len(keep)), node)
    present = {i.name for i in edited.graph.initializer}
    for init in source.graph.initializer:
        if init.name in node.input and init.name not in present:
            edited.graph.initializer.append(init)
    prune_unused(edited)
    return graph_order(edited)


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove data movement that skl2onnx graphs pay for at every call, computing the same values.

    - A column sliced back out of a Concat of [n, 1] graph inputs is that input: the Slice (or
      ArrayFeatureExtractor) reads it directly. skl2onnx concatenates a ColumnTransformer's input
      columns and its per-column converters then slice them apart again.
    - A Concat along axis 1 whose only reader is another Concat along axis 1 is merged into it.
    - Nodes and initializers nothing reads any more are dropped.
    At batch 1 each removed op saves roughly a microsecond of kernel launch (docs/serving-speed.md).
    """
    graph = model.graph
    constants = {init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer}
    column_inputs = {
        i.name
        for i in graph.input
        if len(i.type.tensor_type.shape.dim) == 2 and i.type.tensor_type.shape.dim[1].dim_value == 1
    }
    writers = producers(graph)
    renamed: dict[str, str] = {}
    for node in graph.node:
        column = _sliced_column(node, writers, constants)
        if column is None:
            continue
        source = writers[node.input[0]].input
        if 0 <= column < len(source) and all(name in column_inputs for name in source):
            renamed[node.output[0]] = source[column]
    for node in graph.node:
        _set_inputs(node, [renamed.get(name, name) for name in node.input])
    _merge_concats(graph)
    _drop_unused(graph)
    _no_missing_checks(graph)
    return model


def _set_inputs(node: onnx.NodeProto, names: list[str]) -> None:
    del node.input[:]
    node.input.extend(names)


def _axis(node: onnx.NodeProto) -> int | None:
    return next((a.i for a in node.attribute if a.name == "axis"), None)


def _sliced_column(node: onnx.NodeProto, writers: dict, constants: dict) -> int | None:
    """The column j if ``node`` takes exactly column j (axis 1) of a Concat along axis 1."""
    source = writers.get(node.input[0]) if node.input else None
    if source is None or source.op_type != "Concat" or _axis(source) != 1:
        return None
    if node.op_type == "ArrayFeatureExtractor" and node.input[1] in constants:
        index = constants[node.input[1]].ravel()
        return int(index[0]) if index.size == 1 else None
    if node.op_type == "Slice" and len(node.input) == 4 and all(n in constants for n in node.input[1:]):
        start, end, axes = (constants[n].ravel() for n in node.input[1:])
        if start.size == end.size == axes.size == 1 and axes[0] == 1 and end[0] == start[0] + 1:
            return int(start[0])
    return None


def _merge_concats(graph: onnx.GraphProto) -> None:
    outputs = {o.name for o in graph.output}
    while True:
        readers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                readers.setdefault(name, []).append(node)
        merged = False
        for inner in graph.node:
            if inner.op_type != "Concat" or _axis(inner) != 1 or inner.output[0] in outputs:
                continue
            users = readers.get(inner.output[0], [])
            if len(users) == 1 and users[0].op_type == "Concat" and _axis(users[0]) == 1:
                outer = users[0]
                position = list(outer.input).index(inner.output[0])
                inputs = list(outer.input)
                inputs[position : position + 1] = list(inner.input)
                _set_inputs(outer, inputs)
                merged = True
                break
        if not merged:
            return


TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")


def _no_missing_checks(graph: onnx.GraphProto) -> None:
    """Clear the per-node "missing value goes left" flags of a tree ensemble whose input cannot hold
    NaN: a Concat of Imputer outputs (NaN replaced by finite values) and category codes (finite).

    The flags change nothing for finite inputs, but with any flag set ONNX Runtime's tree walk
    tests every value for NaN; without them it takes its plain comparison loop (about 8 % faster
    at batch 1024 on the default model; docs/serving-speed.md).
    """
    writers = producers(graph)
    for node in graph.node:
        if node.op_type not in TREE_OPS or node.domain != "ai.onnx.ml":
            continue
        source = writers.get(node.input[0])
        if source is None or source.op_type != "Concat" or _axis(source) != 1:
            continue
        if all(_finite_output(writers.get(name)) for name in source.input):
            for attr in node.attribute:
                if attr.name == "nodes_missing_value_tracks_true":
                    attr.ints[:] = [0] * len(attr.ints)


def _finite_output(node: onnx.NodeProto | None) -> bool:
    """True if ``node`` can only output finite floats (given finite or NaN inputs)."""
    if node is None:
        return False
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Imputer":
        replaced = attrs.get("replaced_value_float", 0.0)
        imputed = attrs.get("imputed_value_floats", [])
        return math.isnan(replaced) and bool(imputed) and all(math.isfinite(v) for v in imputed)
    if node.op_type == "LabelEncoder" and "values_floats" in attrs:
        default = attrs.get("default_float", -0.0)
        return all(math.isfinite(v) for v in [*attrs["values_floats"], default])
    return False


def _drop_unused(graph: onnx.GraphProto) -> None:
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):  # skl2onnx writes nodes in topological order
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(node.input)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    initializers = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)

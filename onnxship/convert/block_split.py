"""Splitting a MatMul by input block, and the plan that says what the split did.

``split_block_matmuls`` splits a MatMul fed by a Concat (the ColumnTransformer output) into one
MatMul per block (numeric block, one-hot block), summed: the one-hot block is bounded in [0, 1]
and quantizes almost exactly, while a numeric block can carry far-out values whose products with
rounded weights are off by a lot. The search (onnxship.convert.quantize_search) then decides per
block, and ``fold_fp32_block_sums`` tidies the quantized graph.

The split returns its plan (``BlockSplit``: the split node, its blocks and every node it added).
The fold, the search, quantize_report.json ("split_plan") and the parity diagnosis read that plan;
no step recognises split nodes by their names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

import numpy as np
import onnx
from onnx import numpy_helper

from onnxship.convert import graph
from onnxship.convert.graph import graph_order, prune_unused
from onnxship.convert.quantize import quantizable_nodes


def _concat_source(model: onnx.ModelProto, tensor: str) -> tuple[onnx.NodeProto | None, list]:
    """The Concat (along the last axis) that produces ``tensor``, directly or through Casts."""
    producers = graph.producers(model.graph)
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

    probe = graph.with_outputs(model, dict.fromkeys(tensors, onnx.TensorProto.FLOAT))
    feeds = {}
    for graph_input in model.graph.input:
        elem = graph_input.type.tensor_type.elem_type
        dims = graph_input.type.tensor_type.shape.dim
        shape = (1, (dims[1].dim_value or 1) if len(dims) > 1 else 1)  # v2's packed inputs: [1, K]
        if elem == onnx.TensorProto.STRING:
            feeds[graph_input.name] = np.full(shape, "x", dtype=object)
        else:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
            feeds[graph_input.name] = np.zeros(shape, dtype=dtype)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    values = sess.run(tensors, feeds)
    return {name: int(np.asarray(v).reshape(1, -1).shape[1]) for name, v in zip(tensors, values, strict=True)}


def graph_inputs_of(model: onnx.ModelProto, tensor: str) -> list[str]:
    """The graph inputs that ``tensor`` is computed from (in graph input order)."""
    producers = graph.producers(model.graph)
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


@dataclass(frozen=True)
class Block:
    """One block of a split MatMul: its own MatMul over the block's rows of the weight."""

    node: str  # the block's MatMul
    rows: list[int]  # [start, stop) rows of the original weight
    inputs: list[str]  # the graph inputs the block is computed from


@dataclass(frozen=True)
class BlockSplit:
    """How one MatMul was split: the plan the search, the fold, the report and the parity diagnosis
    read, so that no step has to recognise split nodes by their names."""

    matmul: str  # the FP32 node that was split
    blocks: list[Block]
    sum: str  # the Sum that adds the blocks up (the fold may replace it by a Gemm)
    nodes: list[str]  # every node added for this split: Casts, block MatMuls, the Sum, a fold's Add

    def to_dict(self) -> dict:
        """The plan as quantize_report.json records it (its "split_plan" entries)."""
        return asdict(self)


def split_block_matmuls(
    model: onnx.ModelProto, only: Iterable[str] | None = None
) -> tuple[onnx.ModelProto, list[BlockSplit]]:
    """Split each MatMul fed by a Concat of blocks into one MatMul per block, added up.

    ``x @ W == sum_k x_k @ W_k`` where ``x_k`` are the concatenated blocks and ``W_k`` the matching
    rows of ``W``: the same function, but each block's weights can now be quantized or kept on
    their own. Returns the new model (the input is not modified) and the plan: one ``BlockSplit``
    per split node. ``only`` limits the split to the named MatMul nodes.
    """
    model = graph.copy_model(model)
    wanted = None if only is None else set(only)
    found = []
    for node in quantizable_nodes(model):
        if node.op_type != "MatMul" or (wanted is not None and node.name not in wanted):
            continue
        concat, casts = _concat_source(model, node.input[0])
        if concat is not None:
            found.append((node, concat, casts))
    if not found:
        return model, []
    widths = block_widths(model, sorted({b for _, concat, _ in found for b in concat.input}))
    splits = []
    for node, concat, casts in found:
        split = _split_one(model, node, [(block, widths[block]) for block in concat.input], casts)
        if split is not None:
            splits.append(split)
    prune_unused(model)  # the Concat and Casts that fed the split nodes, if nothing else reads them
    return model, splits


def _split_one(
    model: onnx.ModelProto, node: onnx.NodeProto, blocks: list[tuple[str, int]], casts: list
) -> BlockSplit | None:
    """Replace ``node`` by one MatMul per (block tensor, width), summed; in place. None (and the
    node left alone) if the widths do not add up to the weight's rows."""
    weights = {i.name: i for i in model.graph.initializer}
    weight = numpy_helper.to_array(weights[node.input[1]])
    if sum(width for _, width in blocks) != weight.shape[0]:
        return None  # not the plain block layout we understand
    new_nodes, parts, offset = [], [], 0
    for k, (block, width) in enumerate(blocks):
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
        parts.append(Block(part_name, [offset, offset + width], graph_inputs_of(model, block)))
        offset += width
    sum_name = f"{node.name}_sum"
    new_nodes.append(onnx.helper.make_node("Sum", [p.node for p in parts], list(node.output), name=sum_name))
    position = list(model.graph.node).index(node)
    model.graph.node.remove(node)
    for j, new in enumerate(new_nodes):
        model.graph.node.insert(position + j, new)
    return BlockSplit(node.name, parts, sum_name, [n.name for n in new_nodes])


def _cast_to(cast: onnx.NodeProto) -> int:
    return next(a.i for a in cast.attribute if a.name == "to")


def fold_fp32_block_sums(
    model: onnx.ModelProto, splits: list[BlockSplit]
) -> tuple[onnx.ModelProto, list[BlockSplit]]:
    """After quantization: where a split's Sum adds an FP32 block MatMul to the quantized block,
    compute that block as ``Gemm(x, W, C=rest)`` instead of MatMul + Sum (one pass over the
    [batch, units] output less; the INT8 file is then no slower than needed). In place.

    ``splits`` is the plan ``split_block_matmuls`` returned for this graph: the Sums are found by
    the names it recorded. Returns the model and the plan with any node the fold added.
    """
    producers = graph.producers(model.graph)
    readers = Counter(name for node in model.graph.node for name in node.input)
    weights = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    nodes = {node.name: node for node in model.graph.node}
    folded = []
    for split in splits:
        node = nodes.get(split.sum)
        added = _fold_sum(model, node, producers, readers, weights) if node is not None else []
        folded.append(replace(split, nodes=[*split.nodes, *added]))
    return graph_order(model), folded


def _fold_sum(
    model: onnx.ModelProto, node: onnx.NodeProto, producers: dict, readers: Counter, weights: set[str]
) -> list[str]:
    """Fold one split's two-input Sum into a Gemm (see above); the names of the nodes it added."""
    if node.op_type != "Sum" or len(node.input) != 2:
        return []
    for k, name in enumerate(node.input):
        block = producers.get(name)
        plain = block is not None and block.op_type == "MatMul" and block.input[1] in weights
        if not plain or readers[name] != 1:
            continue
        rest, output, added = node.input[1 - k], node.output[0], []
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
            rest, output, added = biased, bias.output[0], [biased]
        gemm = onnx.helper.make_node(
            "Gemm", [block.input[0], block.input[1], rest], [output], name=block.name
        )
        model.graph.node.insert(position, gemm)
        return added
    return []


def _bias_add(model: onnx.ModelProto, tensor: str, weights: set[str]) -> onnx.NodeProto | None:
    """The Add that is the only reader of ``tensor`` and adds a stored float vector to it."""
    readers = [n for n in model.graph.node if tensor in n.input]
    if len(readers) != 1 or readers[0].op_type != "Add" or tensor in {o.name for o in model.graph.output}:
        return None
    other = [i for i in readers[0].input if i != tensor]
    return readers[0] if len(other) == 1 and other[0] in weights else None

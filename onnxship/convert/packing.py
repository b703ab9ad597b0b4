"""Contract v2's packed inputs: a graph with one [n, 1] input per column rewritten to take one float32
[n, K] "numeric" and one string [n, M] "categorical" tensor.

skl2onnx converts a ColumnTransformer by name with one graph input per column and concatenates
them again (a Concat of 2,000 inputs for a 2,000-column table: 1.3 ms per call at batch 1, most of
it per-input overhead). Here that Concat reads the packed tensor instead: a run of inputs that are
consecutive columns of one tensor becomes the tensor itself or one Slice, any other run one Gather.
A node that reads a column on its own (a LabelEncoder per categorical column) gets it from one
Split of the tensor. Every value the rest of the graph sees is the one it saw before, bit for bit:
Slice, Gather, Split and Concat only move values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxship.convert.graph import graph_order, prune_unused

NUMERIC, CATEGORICAL = "numeric", "categorical"
ELEM = {NUMERIC: TensorProto.FLOAT, CATEGORICAL: TensorProto.STRING}


@dataclass(frozen=True)
class Column:
    """Where the graph input ``name`` (a column) goes in the packed layout."""

    name: str
    tensor: str  # NUMERIC or CATEGORICAL
    index: int


def layout(numeric: list[str], categorical: list[str]) -> dict[str, Column]:
    """{column: Column}: numeric columns in "numeric" in their order, categorical ones likewise."""
    found = {name: Column(name, NUMERIC, i) for i, name in enumerate(numeric)}
    found.update({name: Column(name, CATEGORICAL, i) for i, name in enumerate(categorical)})
    return found


def widths(columns: dict[str, Column]) -> dict[str, int]:
    """{tensor: its column count} for the tensors that hold at least one column, NUMERIC first."""
    counts = {NUMERIC: 0, CATEGORICAL: 0}
    for column in columns.values():
        counts[column.tensor] += 1
    return {tensor: count for tensor, count in counts.items() if count}


def pack_inputs(model: onnx.ModelProto, columns: dict[str, Column]) -> onnx.ModelProto:
    """``model`` (graph inputs named by ``columns``, [n, 1] each) rewritten in place to take the
    packed tensors; returned for chaining."""
    graph = model.graph
    old = {i.name for i in graph.input}
    if old != set(columns):
        raise ValueError(f"graph inputs {sorted(old)} are not the columns {sorted(columns)}")
    _free_names(graph, set(widths(columns)), old)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    editor = _Editor(graph, columns, opset)
    for node in list(graph.node):
        if node.op_type == "Concat" and _axis(node) in (1, -1) and old & set(node.input):
            editor.repack_concat(node)
    editor.single_columns([node for node in graph.node if old & set(node.input)])
    if old & {o.name for o in graph.output}:
        raise ValueError("a graph output is a graph input: nothing to pack")
    del graph.input[:]
    graph.input.extend(
        helper.make_tensor_value_info(tensor, ELEM[tensor], [None, width])
        for tensor, width in widths(columns).items()
    )
    graph.node.extend(editor.added)
    return graph_order(prune_unused(model))


class _Editor:
    """The new nodes and initializers of one packing, with names unique in the graph."""

    def __init__(self, graph: onnx.GraphProto, columns: dict[str, Column], opset: int) -> None:
        self.graph, self.columns = graph, columns
        self.added: list[onnx.NodeProto] = []
        self.taken = _names(graph)
        self.split: dict[str, dict[int, str]] = {}  # tensor -> {index: the Split's output}
        self.opset = opset

    def unique(self, base: str) -> str:
        name, n = base, 0
        while name in self.taken:
            n += 1
            name = f"{base}{n}"
        self.taken.add(name)
        return name

    def constant(self, base: str, values: list[int]) -> str:
        name = self.unique(base)
        self.graph.initializer.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs) -> str:
        output = self.unique(base)
        self.added.append(helper.make_node(op, inputs, [output], name=self.unique(f"pack_{op}"), **attrs))
        return output

    def run(self, tensor: str, indices: list[int]) -> str:
        """A tensor holding columns ``indices`` of ``tensor``, in that order."""
        if indices == list(range(widths(self.columns)[tensor])):
            return tensor
        start = indices[0]
        if indices == list(range(start, start + len(indices))):
            bounds = [self.constant("pack_start", [start]), self.constant("pack_end", [start + len(indices)])]
            return self.node("Slice", [tensor, *bounds, self.constant("pack_axis", [1])], f"{tensor}_part")
        return self.node("Gather", [tensor, self.constant("pack_indices", indices)], f"{tensor}_part", axis=1)

    def repack_concat(self, node: onnx.NodeProto) -> None:
        """Each maximal run of column inputs of one tensor becomes one ``run``; a Concat left with one
        input becomes an Identity (ONNX Runtime drops it), so the tensor names stay as they were."""
        inputs: list[str] = []
        group: list[Column] = []
        for name in [*node.input, None]:
            column = self.columns.get(name) if name is not None else None
            if group and (column is None or column.tensor != group[0].tensor):
                inputs.append(self.run(group[0].tensor, [c.index for c in group]))
                group = []
            if column is not None:
                group.append(column)
            elif name is not None:
                inputs.append(name)
        del node.input[:]
        node.input.extend(inputs)
        if len(inputs) == 1:
            node.op_type = "Identity"
            del node.attribute[:]

    def single_columns(self, nodes: list[onnx.NodeProto]) -> None:
        """Inputs of ``nodes`` that are one column each: per tensor, one Split into every column when
        at least half its columns are read so, else one Slice per column read."""
        wanted = {name for node in nodes for name in node.input if name in self.columns}
        sources = {name: self.single(name, wanted) for name in sorted(wanted)}
        for node in nodes:
            names = [sources.get(name, name) for name in node.input]
            del node.input[:]
            node.input.extend(names)

    def single(self, name: str, wanted: set[str]) -> str:
        column = self.columns[name]
        width = widths(self.columns)[column.tensor]
        if 2 * sum(self.columns[w].tensor == column.tensor for w in wanted) < width or width == 1:
            return self.run(column.tensor, [column.index]) if width > 1 else column.tensor
        outputs = self.split.get(column.tensor)
        if outputs is None:
            names = [self.unique(f"{column.tensor}_{j}") for j in range(width)]
            # From opset 18 on, Split wants its output count as an attribute.
            count = {"num_outputs": width} if self.opset >= 18 else {}
            split = self.unique("pack_Split")
            self.added.append(helper.make_node("Split", [column.tensor], names, name=split, axis=1, **count))
            outputs = self.split[column.tensor] = dict(enumerate(names))
        return outputs[column.index]


def _axis(node: onnx.NodeProto) -> int | None:
    return next((a.i for a in node.attribute if a.name == "axis"), None)


def _names(graph: onnx.GraphProto) -> set[str]:
    names = {i.name for i in graph.input} | {o.name for o in graph.output}
    names |= {i.name for i in graph.initializer} | {n.name for n in graph.node}
    return names | {t for n in graph.node for t in [*n.input, *n.output]}


def _free_names(graph: onnx.GraphProto, wanted: set[str], inputs: set[str]) -> None:
    """Rename any tensor other than a graph input that already bears a packed tensor's name (an
    input of that name is replaced anyway)."""
    taken = _names(graph)
    for name in wanted & (taken - inputs):
        new, n = f"{name}_", 0
        while new in taken:
            n += 1
            new = f"{name}_{n}"
        taken.add(new)
        for node in graph.node:
            node.input[:] = [new if i == name else i for i in node.input]
            node.output[:] = [new if o == name else o for o in node.output]
        for init in graph.initializer:
            if init.name == name:
                init.name = new
        for output in graph.output:
            if output.name == name:
                output.name = new

"""What a client checks in a contract beyond its JSON Schema: the rules that tie fields together,
and the graph against the contract. clients/node/contract.mjs makes the same checks, with the
same messages (``semanticProblem`` and ``graphProblem`` there); each returns the first problem as
one line, or None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from onnxship.contract.schema import FIX

# ONNX Runtime's element types, as Python's session reports them, per contract dtype.
ORT_TYPES = {"float32": "tensor(float)", "string": "tensor(string)"}


def _name(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def features_problem(features: dict) -> str | None:
    """onnx_features.json (already valid under its schema): record fields once each; in v2, every
    column in a listed tensor of its role, numbered 0, 1, ... in inputs order, the shapes right."""
    inputs = features["inputs"]
    first: dict[str, int] = {}
    for i, spec in enumerate(inputs):
        if spec["name"] in first:
            return f"$.inputs[{i}].name {_name(spec['name'])} repeats $.inputs[{first[spec['name']]}].name"
        first[spec["name"]] = i
    if features["schema_version"] == 1:
        seen: dict[str, int] = {}
        for i, spec in enumerate(inputs):
            if spec["onnx_name"] in seen:
                return f"$.inputs[{i}].onnx_name {_name(spec['onnx_name'])} repeats another input's"
            seen[spec["onnx_name"]] = i
        return None
    return _packing_problem(features["tensors"], inputs)


def _packing_problem(tensors: list[dict], inputs: list[dict]) -> str | None:
    by_name: dict[str, int] = {}
    roles: set[str] = set()
    for t, tensor in enumerate(tensors):
        if tensor["onnx_name"] in by_name or tensor["role"] in roles:
            return f"$.tensors[{t}] repeats the name or the role of another tensor"
        by_name[tensor["onnx_name"]] = t
        roles.add(tensor["role"])
    columns = [0] * len(tensors)
    for i, spec in enumerate(inputs):
        t = by_name.get(spec["tensor"])
        if t is None:
            return f"$.inputs[{i}].tensor {_name(spec['tensor'])} is not one of the $.tensors"
        if tensors[t]["role"] != spec["role"]:
            role = tensors[t]["role"]
            return f"$.inputs[{i}] is {spec['role']} but its tensor {_name(spec['tensor'])} is {role}"
        if spec["index"] != columns[t]:
            return (
                f"$.inputs[{i}].index is {spec['index']}, but it must be {columns[t]}: the columns of "
                f"{_name(spec['tensor'])} are numbered 0, 1, ... in inputs order"
            )
        columns[t] += 1
    for t, tensor in enumerate(tensors):
        if tensor["shape"][1] != columns[t]:
            return f"$.tensors[{t}].shape is {_name(tensor['shape'])}, but {columns[t]} inputs name it"
    return None


def metadata_problem(metadata: dict) -> str | None:
    """onnx_metadata.json (valid under its schema): the positive class is class_order's item at
    positive_class_index, the negative class the other one."""
    order = metadata["class_order"]
    index = int(metadata["positive_class_index"])  # JSON 1.0 is the integer 1 (as in JavaScript)
    if order[index] != metadata["positive_label"] or order[1 - index] != metadata["negative_label"]:
        return (
            f"$.class_order is {_name(order)} and $.positive_class_index is {index}: the positive class "
            f"would be {_name(order[index])}, but $.positive_label is {_name(metadata['positive_label'])} "
            f"and $.negative_label {_name(metadata['negative_label'])}"
        )
    return None


def graph_inputs(features: dict) -> dict[str, str]:
    """{graph input: its ONNX Runtime type} the contract describes (v1: one per field; v2: tensors)."""
    listed = features["inputs"] if features["schema_version"] == 1 else features["tensors"]
    return {spec["onnx_name"]: ORT_TYPES[spec["dtype"]] for spec in listed}


def graph_problem(
    features: dict, metadata: dict, inputs: Mapping[str, str], outputs: Mapping[str, Sequence]
) -> str | None:
    """The graph against the contract: ``inputs`` {name: type}; ``outputs`` {name: (type, shape)}.
    The inputs must be the contract's, and probability_output a float tensor [N, classes]."""
    expected = graph_inputs(features)
    if dict(inputs) != expected:
        have = ", ".join(f"{n} {t}" for n, t in sorted(inputs.items()))
        want = ", ".join(f"{n} {t}" for n, t in sorted(expected.items()))
        return f"the model has inputs [{have}], but onnx_features.json describes [{want}]"
    name = metadata["probability_output"]
    found = outputs.get(name)
    width = len(metadata["class_order"])
    shape = found[1] if found is not None else ()
    # A dimension that is not a number is symbolic ("N"): any size.
    wrong_width = len(shape) == 2 and isinstance(shape[1], int) and shape[1] != width
    if found is None or found[0] != ORT_TYPES["float32"] or len(shape) != 2 or wrong_width:
        return (
            f"the model has no output {_name(name)} of float32 probabilities [N, {width}] "
            f"(its outputs: {', '.join(sorted(outputs))})"
        )
    return None


def refusal(where: str, problem: str) -> str:
    """The one line for a contract whose fields do not fit together (``where``: the file or folder)."""
    return f"{where}: {problem}; {FIX}"

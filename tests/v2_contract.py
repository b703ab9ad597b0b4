"""A contract v2 artifact (packed inputs) made from a v1 one, for the clients' tests.

``to_v2`` rewrites model.onnx so that its inputs are one float32 ``[N, K]`` tensor ("numeric") and one
string ``[N, M]`` tensor ("categorical"): a Gather per column feeds each old ``[N, 1]`` input, so the
rest of the graph, and every score, is unchanged. onnx_features.json becomes v2 (docs/contract.md,
"Contract v2") and onnx_metadata.json records the new sha256s. The export stage writes v2 itself
(helper slice "v2export"); this stays the test's own, independent way to get one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxship.core import files

TENSORS = {"numeric": ("float32", TensorProto.FLOAT), "categorical": ("string", TensorProto.STRING)}


def v2_features(features: dict) -> dict:
    """onnx_features.json v1 -> v2: the same fields in order, each at its column of its role's tensor."""
    columns = {role: 0 for role in TENSORS}
    inputs = []
    for spec in features["inputs"]:
        entry = {k: v for k, v in spec.items() if k not in ("onnx_name", "shape")}
        entry.update(tensor=spec["role"], index=columns[spec["role"]])
        columns[spec["role"]] += 1
        inputs.append(entry)
    tensors = [
        {"onnx_name": role, "dtype": TENSORS[role][0], "shape": [None, columns[role]], "role": role}
        for role in TENSORS
        if columns[role]
    ]
    head = {k: features[k] for k in ("missing_field", "extra_fields", "encoding")}
    return {"schema_version": 2, **head, "tensors": tensors, "inputs": inputs}


def v2_model(model: onnx.ModelProto, features: dict) -> onnx.ModelProto:
    """The graph with packed inputs: Gather(tensor, [index], axis=1) -> each old input's name."""
    graph = model.graph
    packed = v2_features(features)
    nodes, initializers = [], []
    for old, spec in zip(features["inputs"], packed["inputs"], strict=True):
        indices = f"{old['onnx_name']}__column"
        initializers.append(numpy_helper.from_array(np.array([spec["index"]], dtype=np.int64), indices))
        nodes.append(helper.make_node("Gather", [spec["tensor"], indices], [old["onnx_name"]], axis=1))
    new_inputs = [
        helper.make_tensor_value_info(t["onnx_name"], TENSORS[t["role"]][1], ["N", t["shape"][1]])
        for t in packed["tensors"]
    ]
    del graph.input[:]
    graph.input.extend(new_inputs)
    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + rest)
    graph.initializer.extend(initializers)
    onnx.checker.check_model(model)
    return model


def to_v2(source: Path, target: Path) -> Path:
    """A copy of the artifacts folder ``source`` with a v2 contract (the other files copied as they are)."""
    shutil.copytree(source, target)
    features = json.loads((source / "onnx_features.json").read_text())
    model = v2_model(onnx.load(source / "model.onnx"), features)
    model_bytes = model.SerializeToString()
    features_bytes = files.json_bytes(v2_features(features))
    (target / "model.onnx").write_bytes(model_bytes)
    (target / "onnx_features.json").write_bytes(features_bytes)
    metadata = json.loads((source / "onnx_metadata.json").read_text())
    metadata["model_sha256"] = hashlib.sha256(model_bytes).hexdigest()
    metadata["features_sha256"] = hashlib.sha256(features_bytes).hexdigest()
    (target / "onnx_metadata.json").write_bytes(files.json_bytes(metadata))
    for stale in ("model.int8.onnx", "quantize_report.json"):  # graphs of the v1 layout
        (target / stale).unlink(missing_ok=True)
    return target

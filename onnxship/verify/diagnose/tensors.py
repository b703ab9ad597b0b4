"""ONNX's side: which tensor of the exported graph holds each scikit-learn step's output, and the
values those tensors take on the examined rows.

The tensor names come from converting the same fitted pipeline again with skl2onnx
(``convert_sklearn(..., intermediate=True)``): same converters, same names as the export.
"""

from __future__ import annotations

import numpy as np
import onnx

from onnxship.contract import runtime
from onnxship.convert.graph import producers, with_outputs
from onnxship.verify.diagnose.records import Step


def session(model: onnx.ModelProto):
    return runtime.session(model.SerializeToString())


def onnx_step_tensors(pipeline, features: dict, model: onnx.ModelProto) -> dict:
    """{id(sklearn estimator) or ("concat", input names) of a branch's selection:
    {"inputs", "outputs", "types"}} from skl2onnx's own topology of the same fitted pipeline."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from onnxship.convert import converters

    converters.register_builtin()
    # The per-column graph skl2onnx builds (export names each input after its column; contract v2
    # then packs the inputs, keeping every other tensor's name).
    types = [
        (
            spec.get("onnx_name", spec["name"]),
            FloatTensorType([None, 1]) if spec["dtype"] == "float32" else StringTensorType([None, 1]),
        )
        for spec in features["inputs"]
    ]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    _, topology = convert_sklearn(
        pipeline,
        initial_types=types,
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset=opset,
        intermediate=True,
    )
    found = {}
    for op in topology.unordered_operator_iterator():
        key = (
            id(op.raw_operator)
            if op.raw_operator is not None
            else ("concat", tuple(i.full_name for i in op.inputs))
        )
        found[key] = {
            "inputs": [i.full_name for i in op.inputs],
            "outputs": [o.full_name for o in op.outputs],
            "types": [
                onnx.TensorProto.STRING if "String" in type(o.type).__name__ else onnx.TensorProto.FLOAT
                for o in op.outputs
            ],
        }
    return found


def attach_tensors(steps: list[Step], found: dict, features: dict) -> None:
    """Name, on each step, the ONNX tensor that holds its output (None if the graph has none)."""
    names = {spec["name"]: spec.get("onnx_name", spec["name"]) for spec in features["inputs"]}
    by_id = {k: v for k, v in found.items() if not isinstance(k, tuple)}
    concats = {k[1]: v for k, v in found.items() if isinstance(k, tuple)}
    model_entry = by_id.get(id(steps[-1].estimator))
    for step in steps:
        step.tensor, step.elem = None, onnx.TensorProto.FLOAT
        if step.kind == "model":
            if model_entry:
                outputs = model_entry["outputs"]
                step.tensor = next((o for o in outputs if o != "label"), outputs[-1])
            continue
        if step.kind == "concat":  # the ColumnTransformer's output is the model's input
            step.tensor = model_entry["inputs"][0] if model_entry else None
            continue
        if step.kind == "select":
            entry = concats.get(tuple(names[c] for c in step.columns or []))
        else:
            entry = by_id.get(id(step.estimator))
        if entry:
            step.tensor, step.elem = entry["outputs"][0], entry["types"][0]


def tensor_values(model: onnx.ModelProto, steps: list[Step], feeds: dict) -> dict[str, np.ndarray]:
    """{tensor: its value on ``feeds``} for every step tensor the graph computes."""
    produced = set(producers(model.graph)) | {i.name for i in model.graph.input}
    available = {s.tensor: s.elem for s in steps if s.tensor in produced}
    outputs = session(with_outputs(model, available)).run(list(available), feeds)
    return dict(zip(available, outputs, strict=True))

"""The decision inside the graph: the ``label`` output rewritten to apply the contract's rule at the
tuned threshold, and the decision's facts in the model's ``metadata_props``.

skl2onnx's ``label`` is the class with the highest probability (0.5 for a binary model), while every
client decides ``p >= threshold`` at the threshold train tuned: someone who reads only the graph got
other decisions (0 positives out of 974 bundled test rows instead of 191). After the rewrite,
``label = Where(GreaterOrEqual(probabilities[:, positive], t32), positive class, negative class)``,
with the same output name, dtype and shape, so existing readers keep working.

The graph compares in float32 and the clients compare float32 probabilities widened to float64 with
the float64 threshold. ``t32`` is the smallest float32 >= threshold: for a float32 p, ``p >= t32``
exactly when ``float64(p) >= threshold``, so the graph's label equals the JSON rule on every row,
p exactly at the threshold included (the parity gate checks it on every row it scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxship.contract import spec
from onnxship.convert.graph import graph_order, prune_unused
from onnxship.core.errors import UserError

LABEL_OUTPUT = "label"
# The argmax label skl2onnx computed is renamed to this (and pruned when nothing else needs it).
ARGMAX_LABEL = "onnxship_argmax_label"
PREFIX = "onnxship."  # the metadata_props keys


@dataclass(frozen=True)
class Decision:
    """What the graph's label applies: the tuned threshold, the positive class's probability column,
    the classifier's classes (``classes_``, in column order) and the contract's two labels."""

    threshold: float
    positive_column: int
    classes: Sequence[Any]
    positive_label: Any
    negative_label: Any
    contract_version: int = spec.CONTRACT_VERSION  # onnx_features.json's, recorded in the graph


def float32_threshold(threshold: float) -> np.float32:
    """The smallest float32 >= ``threshold``: for every float32 p, ``p >= it`` is ``float64(p) >=
    threshold`` (rounding to nearest could land below the threshold and turn a negative positive)."""
    t32 = np.float32(threshold)
    if float(t32) < threshold:
        t32 = np.nextafter(t32, np.float32(np.inf))
    return t32


def class_values(classes: Sequence[Any], elem_type: int) -> np.ndarray:
    """``classes`` as the label output holds them: int64 (0/1, or bool as 0/1) or strings."""
    if elem_type == TensorProto.INT64:
        return np.array([int(c) for c in classes], dtype=np.int64)
    if elem_type == TensorProto.STRING:
        return np.array([str(c) for c in classes], dtype=object)
    name = helper.tensor_dtype_to_np_dtype(elem_type).name
    raise UserError(f"the model's label output is of type {name}: onnxship can only rewrite int64 or string")


def label_output(model: onnx.ModelProto) -> onnx.ValueInfoProto | None:
    return next((o for o in model.graph.output if o.name == LABEL_OUTPUT), None)


def apply_threshold(model: onnx.ModelProto, decision: Decision) -> onnx.ModelProto:
    """Rewrite, in place, what computes the ``label`` output (see the module's docstring), and write
    the decision into ``metadata_props``. A model without a ``label`` output only gets the props."""
    output = label_output(model)
    if output is not None:
        _rewrite_label(model, output.type.tensor_type.elem_type, decision)
    helper.set_model_props(model, metadata_props(decision))
    return model


def _rewrite_label(model: onnx.ModelProto, elem_type: int, decision: Decision) -> None:
    graph = model.graph
    if len(decision.classes) != 2:
        raise UserError(f"the model has {len(decision.classes)} classes: a threshold decides between two")
    values = class_values(decision.classes, elem_type)
    negative_column = 1 - decision.positive_column
    for node in graph.node:
        node.output[:] = [ARGMAX_LABEL if name == LABEL_OUTPUT else name for name in node.output]
    constants = {
        "onnxship_positive_column": np.array(decision.positive_column, dtype=np.int64),
        "onnxship_threshold": np.array(float32_threshold(decision.threshold), dtype=np.float32),
        "onnxship_positive_class": values[decision.positive_column : decision.positive_column + 1],
        "onnxship_negative_class": values[negative_column : negative_column + 1],
    }
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    graph.node.extend(
        [
            helper.make_node(
                "Gather",
                [spec.PROBABILITY_OUTPUT, "onnxship_positive_column"],
                ["onnxship_positive_probability"],
                name="onnxship_positive_probability",
                axis=1,
            ),
            helper.make_node(
                "GreaterOrEqual",
                ["onnxship_positive_probability", "onnxship_threshold"],
                ["onnxship_decision"],
                name="onnxship_decision",
            ),
            helper.make_node(
                "Where",
                ["onnxship_decision", "onnxship_positive_class", "onnxship_negative_class"],
                [LABEL_OUTPUT],
                name="onnxship_label",
            ),
        ]
    )
    prune_unused(model)
    graph_order(model)


def metadata_props(decision: Decision) -> dict[str, str]:
    """The decision as the graph's own metadata (strings; read with ``session.get_modelmeta()``)."""
    return {
        f"{PREFIX}contract_version": str(decision.contract_version),
        f"{PREFIX}decision_rule": spec.DECISION_RULE,
        f"{PREFIX}threshold": repr(float(decision.threshold)),
        f"{PREFIX}threshold_float32": repr(float(float32_threshold(decision.threshold))),
        f"{PREFIX}positive_label": str(decision.positive_label),
        f"{PREFIX}negative_label": str(decision.negative_label),
        f"{PREFIX}positive_class_index": str(decision.positive_column),
        f"{PREFIX}probability_output": spec.PROBABILITY_OUTPUT,
        f"{PREFIX}label_output": LABEL_OUTPUT,
    }


def graph_decisions(labels: np.ndarray, decision: Decision) -> np.ndarray:
    """Which rows the graph's ``label`` output calls positive (label == the positive class)."""
    positive = decision.classes[decision.positive_column]
    if labels.dtype == object:
        return labels.astype(str) == str(positive)
    return labels == int(positive)

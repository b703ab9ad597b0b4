"""The label output rewrite (onnxship.convert.decision) on tiny hand-built graphs, run by ONNX Runtime:
the graph's label equals the contract's float64 rule on values at, just under and just over the
threshold, for int64 and string labels."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxship.convert import decision
from onnxship.core.errors import UserError


def argmax_classifier(label_type: int) -> onnx.ModelProto:
    """probabilities = the input [n, 2]; label = the class of the larger column (skl2onnx's 0.5)."""
    nodes = [
        helper.make_node("Identity", ["x"], ["probabilities"]),
        helper.make_node("ArgMax", ["x"], ["index"], axis=1, keepdims=0),
    ]
    inits = []
    if label_type == TensorProto.STRING:
        inits.append(numpy_helper.from_array(np.array(["no", "yes"], dtype=object), "classes"))
        nodes.append(helper.make_node("Gather", ["classes", "index"], ["label"], axis=0))
    else:
        nodes.append(helper.make_node("Identity", ["index"], ["label"]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [
            helper.make_tensor_value_info("label", label_type, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2]),
        ],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, positive: np.ndarray) -> np.ndarray:
    p = np.asarray(positive, dtype=np.float32)
    x = np.stack([1 - p, p], axis=1).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["label"], {"x": x})[0]


def probes(threshold: float) -> np.ndarray:
    """float32 values around ``threshold``: the nearest, its neighbours, and the ends."""
    t = np.float32(threshold)
    around = [np.nextafter(t, np.float32(-1)), t, np.nextafter(t, np.float32(2))]
    return np.array([0.0, 1.0, 0.5, *around], dtype=np.float32)


@pytest.mark.parametrize(
    "threshold",
    [
        0.3690616864500939,  # the bundled model's: not a float32, nearest float32 above it
        float(np.float32(0.3)) + 1e-12,  # nearest float32 below it: round to nearest would say yes
        float(np.float32(0.25)),  # a float32 exactly: p == threshold is positive
        0.5,
    ],
)
def test_int64_label_is_the_float64_rule(threshold):
    model = decision.apply_threshold(
        argmax_classifier(TensorProto.INT64), decision.Decision(threshold, 1, [0, 1], "yes", "no")
    )
    onnx.checker.check_model(model, full_check=True)
    p = probes(threshold)
    labels = run(model, p)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, (p.astype(np.float64) >= threshold).astype(np.int64))


def test_string_label_and_positive_column_zero():
    """Positive class in column 0 ("no" is the positive class here): the label names it."""
    threshold = 0.7
    model = decision.apply_threshold(
        argmax_classifier(TensorProto.STRING), decision.Decision(threshold, 0, ["no", "yes"], "no", "yes")
    )
    onnx.checker.check_model(model, full_check=True)
    p1 = probes(1 - threshold)
    labels = run(model, p1)  # column 0 holds 1 - p1
    column0 = (1 - p1).astype(np.float32).astype(np.float64)
    assert labels.tolist() == ["no" if c >= threshold else "yes" for c in column0]


def test_metadata_props_and_bytes_are_stable():
    rule = decision.Decision(0.4, 1, [0, 1], "y", "n")
    one = decision.apply_threshold(argmax_classifier(TensorProto.INT64), rule)
    two = decision.apply_threshold(argmax_classifier(TensorProto.INT64), rule)
    assert one.SerializeToString() == two.SerializeToString()
    props = {p.key: p.value for p in one.metadata_props}
    assert props["onnxship.threshold"] == "0.4"
    assert props["onnxship.positive_label"] == "y" and props["onnxship.negative_label"] == "n"
    assert props["onnxship.contract_version"] == "2"  # onnx_features.json's version export writes
    assert props["onnxship.decision_rule"] == "positive if p >= threshold"
    assert float(props["onnxship.threshold_float32"]) >= 0.4
    # The argmax label is gone: nothing computes it any more.
    assert "ArgMax" not in {n.op_type for n in one.graph.node}


def test_three_classes_are_refused():
    with pytest.raises(UserError, match="3 classes"):
        decision.apply_threshold(
            argmax_classifier(TensorProto.INT64), decision.Decision(0.4, 1, [0, 1, 2], "y", "n")
        )


def test_float32_threshold_is_the_smallest_float32_not_below():
    for t in (0.1, 0.3690616864500939, 1 / 3, 0.999999, 1e-9):
        t32 = decision.float32_threshold(t)
        assert float(t32) >= t
        assert float(np.nextafter(t32, np.float32(-1))) < t

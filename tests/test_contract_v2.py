"""Contract v2, packed inputs: the graph surgery computes the very bits of the per-column graph, the
one packing function places each column where onnx_features.json says, a v1 export of the same model
scores identically, and a generated 2,000-column table exports with two graph inputs and passes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper
from threadpoolctl import threadpool_limits

from onnxship.contract import artifacts
from onnxship.contract.encode import Encoder, InvalidRecord
from onnxship.contract.layout import Layout
from onnxship.contract.runtime import session
from onnxship.convert import export, graph, packing
from onnxship.core.errors import UserError
from onnxship.core.params import DataParams, TrainParams
from onnxship.serve.scorer import Scorer
from onnxship.train import data, models
from onnxship.verify import parity
from tests.datagen import make_wide_dataset

# --- the packing function --------------------------------------------------------------------------


def features(version: int) -> dict:
    """A tiny onnx_features.json: numeric a, categorical c, numeric b, in record order."""
    roles = [("a", "numeric"), ("c", "categorical"), ("b", "numeric")]
    dtype = {"numeric": "float32", "categorical": "string"}
    if version == 1:
        inputs = [{"name": n, "onnx_name": n, "dtype": dtype[r], "role": r} for n, r in roles]
        return {"schema_version": 1, "inputs": inputs}
    place = {"a": ("numeric", 1), "b": ("numeric", 0), "c": ("categorical", 0)}  # any order is legal
    inputs = [
        {"name": n, "dtype": dtype[r], "role": r, "tensor": place[n][0], "index": place[n][1]}
        for n, r in roles
    ]
    tensors = [
        {"onnx_name": "numeric", "dtype": "float32", "shape": [None, 2], "role": "numeric"},
        {"onnx_name": "categorical", "dtype": "string", "shape": [None, 1], "role": "categorical"},
    ]
    return {"schema_version": 2, "tensors": tensors, "inputs": inputs}


def test_pack_places_each_column_where_the_contract_says():
    columns = [[1.5, np.float64(0.1)], ["x", ""], np.array([np.nan, 3e38])]
    v1 = Layout(features(1)).pack(columns)
    assert list(v1) == ["a", "c", "b"] and all(v.shape == (2, 1) for v in v1.values())
    v2 = Layout(features(2)).pack(columns)
    assert list(v2) == ["numeric", "categorical"]
    assert (
        v2["numeric"].dtype == np.float32
        and v2["numeric"].shape == (2, 2)
        and v2["numeric"].flags.c_contiguous
    )
    assert v2["categorical"].dtype == object and v2["categorical"].tolist() == [["x"], [""]]
    # The same float32 values as v1's, bit for bit (one rounding from float64), in their columns.
    assert v2["numeric"][:, 1].tobytes() == v1["a"].ravel().tobytes()
    assert v2["numeric"][:, 0].tobytes() == v1["b"].ravel().tobytes()
    empty = Layout(features(2)).pack([[], [], []])
    assert empty["numeric"].shape == (0, 2) and empty["categorical"].shape == (0, 1)


def test_one_record_path_and_crossed_columns_use_the_same_places():
    layout = Layout(features(2))
    feeds = layout.empty(1)
    for view, value in zip(layout.views(feeds), (1.0, "x", 2.0), strict=True):
        view[0, 0] = value
    assert feeds["numeric"].tolist() == [[2.0, 1.0]] and feeds["categorical"].tolist() == [["x"]]
    crossed = layout.crossed(feeds, "a", "b")
    assert crossed["numeric"].tolist() == [[1.0, 2.0]] and feeds["numeric"].tolist() == [[2.0, 1.0]]
    assert layout.input_types() == {"numeric": "tensor(float)", "categorical": "tensor(string)"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f["inputs"][0].update(index=2), "has index 2 outside tensor 'numeric' of 2 columns"),
        (lambda f: f["inputs"][0].update(index=0), "two inputs share index 0 of tensor 'numeric'"),
        (lambda f: f["inputs"][1].update(tensor="numeric"), "input 'c' names tensor 'numeric'"),
        (lambda f: f["tensors"][0].update(shape=[None, 3]), "tensor 'numeric' has 3 columns but 2 inputs"),
        (lambda f: f["inputs"][2].update(index=True), "has index True outside"),
    ],
)
def test_inconsistent_packed_places_are_refused_when_the_contract_loads(change, message):
    broken = features(2)
    change(broken)
    with pytest.raises(UserError, match=message):
        Layout(broken)


# --- the graph surgery -----------------------------------------------------------------------------


def per_column_graph() -> onnx.ModelProto:
    """Inputs x0..x3 (float, [n, 1]) and s0, numeric (string: a column named like a packed tensor);
    Concat(x1, x2, x0) -> +1, Concat(x3) alone, a LabelEncoder per string column."""
    floats = [helper.make_tensor_value_info(f"x{j}", TensorProto.FLOAT, [None, 1]) for j in range(4)]
    strings = [helper.make_tensor_value_info(n, TensorProto.STRING, [None, 1]) for n in ("s0", "numeric")]
    nodes = [
        helper.make_node("Concat", ["x1", "x2", "x0"], ["joined"], axis=1),
        helper.make_node("Add", ["joined", "one"], ["shifted"]),
        helper.make_node("Concat", ["x3"], ["alone"], axis=1),
        *[
            helper.make_node(
                "LabelEncoder",
                [n],
                [f"code_{n}"],
                domain="ai.onnx.ml",
                keys_strings=["a", "b"],
                values_floats=[1.0, 2.0],
            )
            for n in ("s0", "numeric")
        ],
        helper.make_node("Concat", ["shifted", "alone", "code_s0", "code_numeric"], ["out"], axis=1),
    ]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 6])
    one = numpy_helper.from_array(np.ones(1, np.float32), "one")
    body = helper.make_graph(nodes, "g", [*floats, *strings], [out], [one])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)]
    return helper.make_model(body, opset_imports=opsets)


def test_packed_graph_computes_the_same_values_with_two_inputs():
    model = per_column_graph()
    columns = packing.layout(["x0", "x1", "x2", "x3"], ["s0", "numeric"])
    packed = packing.pack_inputs(graph.copy_model(model), columns)
    onnx.checker.check_model(packed, full_check=True)
    assert [i.name for i in packed.graph.input] == ["numeric", "categorical"]
    ops = [n.op_type for n in packed.graph.node]
    assert ops.count("Gather") == 1 and ops.count("Split") == 1  # x1, x2, x0: one Gather; strings: one Split
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    s = rng.choice(["a", "b", "z"], (5, 2)).astype(object)
    v1 = {f"x{j}": x[:, j : j + 1] for j in range(4)} | {"s0": s[:, :1], "numeric": s[:, 1:]}
    want = session(model.SerializeToString()).run(["out"], v1)[0]
    got = session(packed.SerializeToString()).run(["out"], {"numeric": x, "categorical": s})[0]
    assert got.tobytes() == want.tobytes()


# --- the bundled export, v1 and v2 ------------------------------------------------------------------


def test_v1_and_v2_exports_of_one_model_score_the_same_bits(served, staged_v1):
    v1_features = json.loads((staged_v1 / "onnx_features.json").read_text())
    v2_features = json.loads((served / "onnx_features.json").read_text())
    assert (v1_features["schema_version"], v2_features["schema_version"]) == (1, 2)
    assert [i.name for i in onnx.load(staged_v1 / "model.onnx").graph.input] == [
        i["name"] for i in v1_features["inputs"]
    ]
    assert [i.name for i in onnx.load(served / "model.onnx").graph.input] == [
        t["onnx_name"] for t in v2_features["tensors"]
    ]
    # The quantize stage's INT8 file takes the same packed inputs.
    assert [i.name for i in onnx.load(served / "model.int8.onnx").graph.input] == ["numeric", "categorical"]
    one, two = Scorer(staged_v1), Scorer(served)
    raw = data.read_csv(served / "test.csv")
    edges, _ = parity.edge_rows(raw.iloc[0], two.features, raw)
    records = pd.concat([raw, edges], ignore_index=True).to_dict("records")
    p1, d1 = one.score_records(records)
    p2, d2 = two.score_records(records)
    assert p1.tobytes() == p2.tobytes() and (d1 == d2).all()
    assert [one.score_record(r) for r in records[:40]] == [two.score_record(r) for r in records[:40]]
    # Byte-identical run to run: the same feeds give the same bytes again.
    assert two.score_records(records)[0].tobytes() == p2.tobytes()


def test_invalid_records_read_the_same_in_v1_and_v2(served, staged_v1):
    raw = data.read_csv(served / "test.csv")
    record = raw.iloc[0].to_dict()
    numeric = "total_day_minutes"
    for bad in ({**record, numeric: "12,5"}, {k: v for k, v in record.items() if k != "state"}, [1, 2]):
        messages = []
        for folder in (staged_v1, served):
            with pytest.raises(InvalidRecord) as caught:
                Scorer(folder).score_records([record, bad])
            messages.append(str(caught.value))
        assert messages[0] == messages[1], messages


def test_a_v2_contract_with_inconsistent_indices_is_refused_at_load(served):
    features = json.loads((served / "onnx_features.json").read_text())
    features["inputs"][1]["index"] = 0
    data_bytes = json.dumps(features).encode()
    metadata = json.loads((served / "onnx_metadata.json").read_text())
    metadata["features_sha256"] = __import__("hashlib").sha256(data_bytes).hexdigest()
    model = (served / "model.onnx").read_bytes()
    with pytest.raises(UserError, match=r"\$\.inputs\[1\]\.index is 0, but it must be 1"):
        artifacts.from_bytes(data_bytes, json.dumps(metadata).encode(), model)


# --- a wide table --------------------------------------------------------------------------------------


def test_a_2000_column_table_exports_packed_and_matches_scikit_learn():
    raw = make_wide_dataset(300, 2000, categorical=6)
    params = DataParams(path="wide.csv", target="target", positive_label="yes")
    roles = data.infer_roles(raw, params)
    assert len(roles.numeric) == 1994 and len(roles.categorical) == 6
    X, y = data.features(raw, roles), data.target(raw, params)
    train = TrainParams.model_validate(
        {"candidates": ["hist_gradient_boosting"], "hist_gradient_boosting": {"max_iter": 20}}
    )
    with threadpool_limits(1):  # OpenMP threads on a busy machine: 10x slower, not faster
        pipeline = models.build_pipeline("hist_gradient_boosting", roles, train).fit(X, y)
    model = export.convert(pipeline, roles, 17)
    packing.pack_inputs(model, packing.layout(roles.numeric, roles.categorical))
    onnx.checker.check_model(model, full_check=True)
    contract = export.feature_schema(model, roles, pipeline, version=2)
    assert [t["shape"] for t in contract["tensors"]] == [[None, 1994], [None, 6]]
    assert len(model.graph.node) < 20  # no per-column nodes: the Concat of 1,994 inputs is the tensor
    edges, _ = parity.edge_rows(raw.iloc[0], contract, raw, max_rows=100)
    rows = pd.concat([raw.drop(columns="target"), edges], ignore_index=True)
    expected = pipeline.predict_proba(data.features(rows, roles))[:, 1]
    feeds = Encoder(contract).encode(rows.to_dict("records"))
    got = session(model.SerializeToString()).run(["probabilities"], feeds)[0][:, 1].astype(np.float64)
    assert np.abs(got - expected).max() <= 1e-4

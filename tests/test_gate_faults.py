"""The parity gate proves itself: known export faults are injected and each must be caught with a
precise reason AND diagnosed (the report's `diagnosis` names the right step, feature, contract field
or node), while correct exports of every family must pass with no diagnosis finding (no false alarms).

Faults are applied to the real skl2onnx output of small pipelines fitted on the bundled data.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import numpy_helper

from onnxship.contract import artifacts, cpu, spec
from onnxship.contract.artifacts import Contract
from onnxship.convert import decision, export, packing, quantize, quantize_run
from onnxship.core.files import json_bytes
from onnxship.core.params import ParityParams, load_params
from onnxship.serve.scorer import Scorer
from onnxship.train import data, training
from onnxship.train.lineage import read_threshold, threshold_mismatch
from onnxship.verify import parity
from tests.conftest import FAMILIES, REPO, churn_raw, churn_xy, fitted

DIFF = "max |p_sklearn - p_backend|"


class Case:
    """One family's correct artifacts (contract ``version``: 1, one input per column; 2, packed) and
    the raw rows the gate scores."""

    def __init__(self, family: str, version: int = 1):
        X, y, roles = churn_xy()
        self.roles = roles
        self.pipeline = fitted(family)
        self.threshold, _ = training.tune_threshold(
            y[:2000], self.pipeline.predict_proba(X.iloc[:2000])[:, 1], "f1"
        )
        raw = churn_raw().iloc[3000:4000].reset_index(drop=True)
        # As the export stage ships it: the label output applies the tuned threshold.
        rule = decision.Decision(self.threshold, 1, list(self.pipeline.classes_), "yes", "no")
        converted = export.convert(self.pipeline, roles, target_opset=17)
        if version == 2:
            packing.pack_inputs(converted, packing.layout(roles.numeric, roles.categorical))
        self.fp32 = decision.apply_threshold(converted, rule)
        self.features = export.feature_schema(self.fp32, roles, self.pipeline, version=version)
        edges, edge_cases = parity.edge_rows(raw.iloc[0], self.features, raw)
        self.rows = pd.concat([raw, edges], ignore_index=True).to_dict("records")
        self.X = data.features(pd.DataFrame.from_records(self.rows), roles)
        self.cases = [f"test row {i}" for i in range(len(raw))] + edge_cases
        self.n_test = len(raw)
        # Every MatMul/Gemm INT8, with 7-bit weights: both u8s8 kernel families compute the same
        # integers (onnxship.convert.kernel_families), so its drift is the same on every CPU.
        self.int8_all = quantize.quantize(self.fp32, quantize.Quantization("QInt8", reduce_range=True))
        # ... and with 8-bit weights: on far-out edge rows, pairs of products overflow int16 on CPUs
        # without VNNI (u8s8-int16-saturating), not on the others.
        self.int8_all_8bit = quantize.quantize(self.fp32, quantize.Quantization("QInt8"))
        lineage = {
            "target": {"negative_label": "no", "positive_label": "yes"},
            "model_sha256": "0" * 64,
            "chosen": {"family": family},
        }
        self.features_bytes = json_bytes(self.features)
        self.metadata = export.metadata(
            self.fp32,
            self.fp32.SerializeToString(),
            self.pipeline,
            lineage,
            self.threshold,
            self.features_bytes,
        )
        self.int8, self.split_plan = self.shipped_int8()

    def shipped_int8(self) -> tuple[onnx.ModelProto, list[dict]]:
        """The INT8 model the quantize stage ships with the default params, and its split plan:
        searched on training rows and their edge rows, as the stage does. The default uint8 weights
        (``weight_type: QUInt8``) run on uint8 x uint8 kernels, which compute the same integers on
        every CPU, and the search measures both u8s8 families anyway: the same verdict on every CPU."""
        params = load_params(REPO / "params.yaml")
        options = quantize_run.Options.from_params(
            params.quantize, params.parity.tolerances.int8, params.parity.max_edge_rows
        )
        calibration = churn_raw().iloc[:400].reset_index(drop=True)  # training rows, never the gate's
        inputs = quantize_run.QuantizeInput(
            self.fp32.SerializeToString(), Path("model.onnx"), self.features, self.metadata, calibration
        )
        result = quantize_run.quantize_model(inputs, options)
        return onnx.ModelProto.FromString(result.int8_bytes), result.report["split_plan"]

    def contract(self, model, metadata=None) -> Contract:
        return Contract(self.features, metadata or self.metadata, model.SerializeToString(), "test")

    def gate(
        self,
        fp32=None,
        int8=None,
        metadata=None,
        policy: str = "fail",
        backends=None,
        problems=None,
        diagnose="on_failure",
        int8_tolerance=None,
        split_plan=None,
    ):
        params = load_params(REPO / "params.yaml").parity.model_copy(
            update={"int8_on_failure": policy, "diagnose": diagnose}
        )
        if int8_tolerance:
            params.tolerances.int8 = params.tolerances.int8.model_copy(update=int8_tolerance)
        gate = parity.GateInput(
            pipeline=self.pipeline,
            threshold=self.threshold,
            roles=self.roles,
            rows=self.rows,
            cases=self.cases,
            n_test=self.n_test,
            backends=backends
            or {
                "onnx": self.contract(fp32 or self.fp32, metadata),
                "int8": self.contract(int8 or self.int8, metadata),
            },
            params=ParityParams.model_validate(params.model_dump()),
            problems=problems or {},
            split_plan=list(self.split_plan if split_plan is None else split_plan),
        )
        report = parity.run_gate(gate)[0]
        json_bytes(report)  # the report, diagnosis included, is written as strict JSON (no NaN/inf)
        return report


_cases: dict[tuple[str, int], Case] = {}


def case(family: str, version: int = 1) -> Case:
    if (family, version) not in _cases:
        _cases[family, version] = Case(family, version)
    return _cases[family, version]


# --- the faults -------------------------------------------------------------------------------


def swap_numeric_inputs(model: onnx.ModelProto, a: str, b: str) -> onnx.ModelProto:
    """Cross two inputs inside the graph: a client feeding by name gets them swapped."""
    model = copy.deepcopy(model)
    for node in model.graph.node:
        node.input[:] = [{a: b, b: a}.get(name, name) for name in node.input]
    return model


def swap_packed_columns(model: onnx.ModelProto, features: dict, a: str, b: str) -> onnx.ModelProto:
    """Contract v2's twin of ``swap_numeric_inputs``: the graph reads columns ``a`` and ``b`` of the
    packed tensor crossed (one Gather of the permuted columns in front of everything that reads it)."""
    model = copy.deepcopy(model)
    spec_ = {s["name"]: s for s in features["inputs"]}
    tensor = spec_[a]["tensor"]
    width = next(t["shape"][1] for t in features["tensors"] if t["onnx_name"] == tensor)
    order = list(range(width))
    order[spec_[a]["index"]], order[spec_[b]["index"]] = spec_[b]["index"], spec_[a]["index"]
    for node in model.graph.node:
        node.input[:] = [f"{tensor}_crossed" if name == tensor else name for name in node.input]
    model.graph.initializer.append(numpy_helper.from_array(np.array(order, dtype=np.int64), "crossed_order"))
    crossed = onnx.helper.make_node("Gather", [tensor, "crossed_order"], [f"{tensor}_crossed"], axis=1)
    model.graph.node.insert(0, crossed)
    return model


def shuffle_categorical_mapping(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rotate the category list of every one-hot encoder, and the keys of every category-code
    table (trees get codes, not one-hot): each category lands in another's slot."""
    model = copy.deepcopy(model)
    for node in model.graph.node:
        names = {a.name for a in node.attribute}
        table = node.op_type == "LabelEncoder" and "values_floats" in names
        if node.op_type == "OneHotEncoder" or table:
            for attr in node.attribute:
                if attr.name in ("cats_strings", "keys_strings") and len(attr.strings) > 1:
                    attr.strings[:] = [*attr.strings[1:], attr.strings[0]]
    return model


def remove_scaler(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace the standard scaler by an identity: raw values reach the model."""
    model = copy.deepcopy(model)
    for node in model.graph.node:
        if node.op_type == "Scaler":
            del node.attribute[:]
            node.op_type, node.domain = "Identity", ""
    return model


def weights_to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Round every float weight (initializers and float attributes) to float16 precision."""
    model = copy.deepcopy(model)
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(array.astype(np.float16).astype(np.float32), init.name))
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.FLOATS:
                attr.floats[:] = np.asarray(attr.floats, np.float32).astype(np.float16).astype(np.float32)
            elif attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == onnx.TensorProto.FLOAT:
                array = numpy_helper.to_array(attr.t).astype(np.float16).astype(np.float32)
                attr.t.CopyFrom(numpy_helper.from_array(array, attr.t.name))
    return model


def shift_probability(model: onnx.ModelProto, delta: float) -> onnx.ModelProto:
    """Add ``delta`` to the positive-class probability: decisions just below the threshold flip."""
    model = copy.deepcopy(model)
    name = spec.PROBABILITY_OUTPUT
    for node in model.graph.node:
        node.output[:] = [f"{name}_unshifted" if out == name else out for out in node.output]
    shift = numpy_helper.from_array(np.array([[-delta, delta]], dtype=np.float32), "probability_shift")
    model.graph.initializer.append(shift)
    model.graph.node.append(onnx.helper.make_node("Add", [f"{name}_unshifted", "probability_shift"], [name]))
    return model


def flipping_delta(c: Case, min_agreement: float, model: onnx.ModelProto) -> float:
    """The smallest shift of ``model``'s probability that flips more rows than ``min_agreement``
    allows: counted from ``model``'s own probabilities (INT8 moves them a little), which are the
    same on both u8s8 kernel families for the shipped INT8 (7-bit weights)."""
    p = c.pipeline.predict_proba(c.X)[:, 1]
    scorer = Scorer.from_contract(c.contract(model))
    q = np.array([scorer.score_record(row)[0] for row in c.rows])
    below = np.sort((c.threshold - q)[(p < c.threshold) & (q < c.threshold)])
    k = int(np.floor((1 - min_agreement) * len(p))) + 1
    return float(below[k - 1]) + 1e-4


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_correct_exports_pass_with_no_diagnosis_finding(family):
    report = case(family).gate(diagnose="always")
    assert report["passed"], report["backends"]["onnx"]["reasons"] + report["backends"]["int8"]["reasons"]
    for name in ("onnx", "int8"):
        diagnosis = report["backends"][name]["diagnosis"]
        assert diagnosis["findings"] == [], (name, diagnosis["findings"])
        assert diagnosis["first_divergent_step"] is None
        # The step comparison really ran: the preprocessing steps and the model were compared.
        compared = {s["step"] for s in diagnosis["steps"] if s["compared"]}
        assert {"preprocess/numeric", "preprocess/numeric/impute", "model"} <= compared
        # The INT8 MLP's block split feeds its first layer the blocks, not their concatenation.
        if name == "onnx" or not case(family).split_plan:
            assert "preprocess" in compared
    # Nothing to quantize (trees, plain linear): the INT8 file is model.onnx, judged without rescoring.
    same = case(family).int8.SerializeToString() == case(family).fp32.SerializeToString()
    assert report["backends"]["int8"].get("scored_like") == ("onnx" if same else None)
    assert same is (family != "mlp")


def onnx_reasons(report: dict) -> list[str]:
    assert not report["passed"]
    return report["backends"]["onnx"]["reasons"]


def findings(report: dict, backend: str = "onnx") -> list[dict]:
    return report["backends"][backend]["diagnosis"]["findings"]


def test_a_label_output_at_0_5_fails_the_gate_though_its_probabilities_agree():
    """skl2onnx's own label (the larger probability, i.e. 0.5) instead of the tuned threshold: the
    probabilities are right, so only the label check catches it, naming the first row it disagrees on."""
    c = case(FAMILIES[0])
    argmax = export.convert(c.pipeline, c.roles, target_opset=17)
    result = c.gate(fp32=argmax)["backends"]["onnx"]
    assert result["max_abs_diff"] <= result["tolerance"]["max_abs_diff"] and result["flipped"] == 0
    assert result["graph_label"]["mismatched"] > 0  # rows with threshold <= p < 0.5
    (reason,) = result["reasons"]
    assert reason.startswith(f"the graph's label output disagrees with the rule p >= {c.threshold!r} on ")
    assert c.gate()["backends"]["onnx"]["graph_label"] == {
        "rows": len(c.rows),
        "mismatched": 0,
        "mismatched_rows": [],
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_swapped_numeric_inputs_are_caught(family):
    c = case(family)
    faulty = swap_numeric_inputs(c.fp32, "total_day_minutes", "number_customer_service_calls")
    report = c.gate(fp32=faulty)
    assert any(DIFF in r for r in onnx_reasons(report))
    found = findings(report)
    assert report["backends"]["onnx"]["diagnosis"]["first_divergent_step"] == "preprocess/numeric"
    swapped = "numeric inputs 'total_day_minutes' and 'number_customer_service_calls' look swapped"
    assert any(f["cause"] == "swapped columns" and swapped in f["message"] for f in found), found
    # Confirmed by feeding the two inputs crossed.
    assert any(f["cause"] == "swapped inputs" and "restores parity" in f["message"] for f in found), found
    assert {c for f in found for c in f.get("columns", [])} == {
        "total_day_minutes",
        "number_customer_service_calls",
    }


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "mlp"])
def test_packed_v2_export_passes_and_swapped_columns_are_named(family):
    """Contract v2: the correct packed export passes with no finding, and two numeric columns crossed
    inside the packed tensor are named by their column names, as v1's swapped inputs are."""
    c = case(family, version=2)
    assert [i.name for i in c.fp32.graph.input] == ["numeric", "categorical"]
    report = c.gate(diagnose="always", backends={"onnx": c.contract(c.fp32)})
    assert report["passed"] and findings(report) == [], report["backends"]["onnx"]
    a, b = "total_day_minutes", "number_customer_service_calls"
    report = c.gate(fp32=swap_packed_columns(c.fp32, c.features, a, b), backends=None)
    assert any(DIFF in r for r in onnx_reasons(report))
    found = findings(report)
    assert report["backends"]["onnx"]["diagnosis"]["first_divergent_step"] == "preprocess/numeric"
    swapped = f"numeric inputs '{a}' and '{b}' look swapped"
    assert any(f["cause"] == "swapped columns" and swapped in f["message"] for f in found), found
    assert any(f["cause"] == "swapped inputs" and "restores parity" in f["message"] for f in found), found


@pytest.mark.parametrize("family", FAMILIES)
def test_shuffled_categorical_mapping_is_caught(family):
    c = case(family)
    report = c.gate(fp32=shuffle_categorical_mapping(c.fp32))
    assert any(DIFF in r for r in onnx_reasons(report))
    (finding,) = findings(report)
    # The categorical branch's encoding step (one-hot for linear models and the MLP; ordinal codes
    # for trees, whose encoder output has no tensor of its own, so the ColumnTransformer output).
    assert finding["cause"] == "category order", finding
    assert finding["step"] in ("preprocess/categorical/encode", "preprocess"), finding
    assert finding["columns"] == ["state", "area_code", "international_plan", "voice_mail_plan"]
    assert "differs for columns 'state', 'area_code'" in finding["message"]
    # Restoring one column's one-hot block at a time says which feature moves the decisions most.
    assert finding["drivers"] and set(finding["drivers"]) <= set(finding["columns"])


@pytest.mark.parametrize("family", ["logistic_regression", "mlp"])
def test_removed_scaler_is_caught(family):
    c = case(family)
    report = c.gate(fp32=remove_scaler(c.fp32))
    assert any(DIFF in r for r in onnx_reasons(report))
    (finding,) = findings(report)
    assert finding["step"] == "preprocess/numeric/scale" and finding["cause"] == "not applied", finding
    assert "total_day_minutes" in finding["columns"]


@pytest.mark.parametrize("family", FAMILIES)
def test_float16_weights_are_caught(family):
    c = case(family)
    report = c.gate(fp32=weights_to_float16(c.fp32))
    assert any(DIFF in r for r in onnx_reasons(report))
    found = findings(report)
    rounded = {f["step"] for f in found if f["cause"] == "float16 weights"}
    assert "model" in rounded, found  # the estimator's weights, in every family
    if family in ("logistic_regression", "mlp"):
        assert "preprocess/numeric/scale" in rounded
    # Any step flagged by values differs by rounding only, never by a wrong mapping.
    assert all(f["cause"] in ("float16 weights", "precision", "values") for f in found), found


@pytest.mark.parametrize("family", FAMILIES)
def test_changed_threshold_in_metadata_is_caught(family):
    c = case(family)
    metadata = {**c.metadata, "threshold": 0.5}
    report = c.gate(metadata=metadata)
    assert any("metadata threshold 0.5 != trained threshold" in r for r in onnx_reasons(report))
    # Only the contract is named: the model itself computes what scikit-learn does.
    assert [(f["step"], f["cause"]) for f in findings(report)] == [("onnx_metadata.json", "threshold")]


@pytest.mark.parametrize("family", FAMILIES)
def test_swapped_positive_class_column_is_caught(family):
    c = case(family)
    metadata = {**c.metadata, "positive_class_index": 0}
    report = c.gate(metadata=metadata)
    reasons = onnx_reasons(report)
    assert any("positive_class_index 0 points at class 'no'" in r for r in reasons), reasons
    assert any(DIFF in r for r in reasons), reasons
    found = findings(report)
    assert [(f["step"], f["cause"]) for f in found] == [("onnx_metadata.json", "positive class column")]
    assert "p equals 1 - p_sklearn" in found[0]["message"]


@pytest.mark.parametrize("family", FAMILIES)
def test_int8_that_flips_decisions_near_the_threshold_is_caught(family):
    c = case(family)
    tolerance = load_params(REPO / "params.yaml").parity.tolerances.int8
    faulty = shift_probability(c.int8, flipping_delta(c, tolerance.min_agreement, c.int8))
    report = c.gate(int8=faulty, policy="fail")
    assert not report["passed"]
    reasons = report["backends"]["int8"]["reasons"]
    assert any("decision agreement" in r for r in reasons), reasons
    flipped = report["backends"]["int8"]["flipped_rows"]
    assert flipped and flipped[0]["distance_to_threshold"] < flipped[-1]["distance_to_threshold"] + 1e-12
    # The diagnosis compares the INT8 graph with FP32's and names the node that is in neither.
    found = findings(report, "int8")
    assert [f["cause"] for f in found] == ["foreign node"], found
    assert "writing ['probabilities']" in found[0]["message"]
    # The other policy: the gate passes on FP32 and INT8 is marked not deployable.
    lenient = c.gate(int8=faulty, policy="not_deployable")
    assert lenient["passed"] and not lenient["backends"]["int8"]["deployable"]
    assert lenient["backends"]["onnx"]["deployable"]


def test_int8_drift_is_traced_to_the_quantized_node():
    """A real quantized MLP held to a tolerance it cannot meet: the diagnosis puts each quantized
    node back to FP32 in turn and names the one whose quantization moves the probabilities."""
    c = case("mlp")
    report = c.gate(int8=c.int8_all, split_plan=[], int8_tolerance={"max_abs_diff": 0.005})
    assert not report["backends"]["int8"]["passed"]
    diagnosis = report["backends"]["int8"]["diagnosis"]
    # The preprocessing matches exactly: the first step that diverges is the estimator.
    assert diagnosis["first_divergent_step"] == "model"
    assert "output differs though its input matches" in diagnosis["findings"][0]["message"]
    assert {n["node"] for n in diagnosis["int8_nodes"]} == {"MatMul", "MatMul1"}
    named = [f for f in diagnosis["findings"] if f["cause"] == "quantized node"]
    assert named and named[0]["node"] == "MatMul", diagnosis  # the wide first layer
    assert "keeping it FP32 brings the max diff" in named[0]["message"]


# --- contract files a client refuses, and a threshold train did not write ---------------------------


def client_load(c: Case, features_bytes: bytes, metadata: dict) -> Contract | str:
    return parity.client_load(
        lambda: artifacts.from_bytes(features_bytes, json_bytes(metadata), c.fp32.SerializeToString())
    )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("newer_schema_version", "has schema_version 2; this client reads onnx_metadata.json version 1"),
        ("features_of_another_export", "onnx_features.json does not match the sha256 in onnx_metadata.json"),
    ],
)
def test_contract_files_a_client_refuses_fail_the_gate(fault, reason):
    c = case("logistic_regression")
    features_bytes, metadata = c.features_bytes, dict(c.metadata)
    assert not isinstance(client_load(c, features_bytes, metadata), str)  # the genuine files load
    if fault == "newer_schema_version":
        metadata["schema_version"] = 2
    else:
        features_bytes = json_bytes({**c.features, "extra_fields": "ignore"}).replace(b"\n", b"\r\n")
    loaded = client_load(c, features_bytes, metadata)
    assert isinstance(loaded, str) and reason in loaded
    report = c.gate(backends={"onnx": loaded, "int8": loaded})
    assert not report["passed"]
    assert any(r.startswith("a client refuses its files:") and reason in r for r in onnx_reasons(report))


def test_a_threshold_txt_that_train_did_not_write_fails_the_gate(tmp_path):
    c = case("logistic_regression")
    edited = tmp_path / "threshold.txt"
    edited.write_text("0.9\n")
    problem = threshold_mismatch(read_threshold(edited), {"threshold": {"value": c.threshold}}, edited)
    assert problem == f"threshold.txt says 0.9 but lineage.json records the tuned threshold {c.threshold!r}"
    report = c.gate(problems={"onnx": [problem], "int8": [problem]})
    assert problem in onnx_reasons(report)


def test_the_nodes_of_the_int8_block_split_are_known_to_the_diagnosis_by_the_plan():
    """The searched INT8 MLP splits its first layer by input block and folds the FP32 block into a
    Gemm: nodes that are neither FP32 nodes nor quantization ops. The diagnosis knows them from the
    quantize report's split plan (no name parsing): with the plan, no foreign node; without it,
    exactly those nodes are named."""
    c = case("mlp")
    int8 = c.int8  # the INT8 the quantize stage ships, searched as the stage does (Case.shipped_int8)
    (plan,) = c.split_plan
    report = c.gate(int8=int8, diagnose="always", policy="not_deployable", split_plan=c.split_plan)
    assert not [f for f in findings(report, "int8") if f["cause"] == "foreign node"]
    blind = c.gate(int8=int8, diagnose="always", policy="not_deployable", split_plan=[])
    foreign = {f["node"] for f in findings(blind, "int8") if f["cause"] == "foreign node"}
    assert foreign and foreign <= set(plan["nodes"])


# --- both u8s8 kernel families ------------------------------------------------------------------


def test_8_bit_int8_that_saturates_without_vnni_is_caught_on_any_cpu():
    """The issue's case: every MatMul of the MLP INT8 with 8-bit weights. On CPUs without VNNI a
    far-out edge row overflows int16 pair sums and the probability goes to 1; with VNNI it stays
    within tolerance. The gate scores the family it does not run on through an emulating twin, so
    on either CPU the report holds both verdicts and INT8 fails."""
    c = case("mlp")
    report = c.gate(int8=c.int8_all_8bit, split_plan=[], policy="not_deployable", diagnose="never")
    int8 = report["backends"]["int8"]
    families = int8["kernel_families"]
    assert not families["proof"]["same_on_both_families"]
    assert families["native"] in (*cpu.FAMILIES, cpu.UNKNOWN) and families["checked"]
    saturating, exact = families[cpu.SATURATING], families[cpu.EXACT]
    assert not saturating["passed"] and saturating["max_abs_diff"] > 0.5  # measured: 1.0
    assert exact["passed"] and exact["max_abs_diff"] < 0.07  # measured: 0.038
    assert {saturating["how"], exact["how"]} <= {"native", "emulated"}
    assert not int8["passed"] and not int8["deployable"] and report["passed"]  # FP32 still ships
    assert any(DIFF in r for r in int8["reasons"]), int8["reasons"]


def test_the_shipped_int8_has_the_same_integers_on_both_families_and_passes_on_both():
    """uint8 weights (the default weight_type QUInt8): the one quantized MatMul, the one-hot block,
    computes the same integers on every CPU, so the native figures are both families' figures."""
    c = case("mlp")
    report = c.gate(policy="fail", diagnose="never")
    families = report["backends"]["int8"]["kernel_families"]
    assert report["passed"] and families["proof"]["same_on_both_families"], families["proof"]
    assert [(m["weights"], m["exact_everywhere"]) for m in families["proof"]["matmuls"]] == [("uint8", True)]
    assert families[cpu.SATURATING]["passed"] and families[cpu.EXACT]["passed"]
    assert {families[f]["max_abs_diff"] for f in cpu.FAMILIES} == {report["backends"]["int8"]["max_abs_diff"]}

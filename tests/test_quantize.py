import numpy as np
import onnx
import pytest
from onnxruntime.quantization import QuantType, quantize_dynamic

from onnxship.contract import spec
from onnxship.convert import block_split, export, kernel_families, quantize
from tests.conftest import FAMILIES, churn_xy, fitted, onnx_probabilities


def exported(family: str) -> onnx.ModelProto:
    return export.convert(fitted(family), churn_xy()[2], target_opset=17)


def with_duplicate_default_domain(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph as some skl2onnx conversions emit it: the default opset imported twice."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    model.opset_import.append(onnx.helper.make_opsetid("ai.onnx", 17))
    return model


def test_dedupe_keeps_one_import_per_domain():
    model = with_duplicate_default_domain(exported("mlp"))
    fixed = quantize.dedupe_opset_imports(model)
    assert sorted((o.domain, o.version) for o in fixed.opset_import) == [("", 17), ("ai.onnx.ml", 2)]


def test_stock_quantizer_fails_on_duplicate_import_and_ours_does_not(tmp_path):
    model = with_duplicate_default_domain(exported("mlp"))
    onnx.save(model, tmp_path / "dup.onnx")
    with pytest.raises(ValueError, match=r"ai\.onnx domain"):
        quantize_dynamic(tmp_path / "dup.onnx", tmp_path / "out.onnx", weight_type=QuantType.QInt8)
    int8 = quantize.quantize(model, quantize.Quantization("QInt8"))
    assert sum(quantize.quantized_nodes(model, int8).values()) > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_quantizes_and_reports_honestly(family):
    fp32 = exported(family)
    int8 = quantize.quantize(fp32, quantize.Quantization("QInt8"))
    onnx.checker.check_model(int8)
    by_op = quantize.quantized_nodes(fp32, int8)
    if family == "mlp":
        assert by_op["MatMul"] == 2  # one hidden layer + output layer
        assert len(int8.SerializeToString()) < len(fp32.SerializeToString())
    else:
        # ai.onnx.ml ops are left alone: the INT8 file computes what FP32 does.
        assert sum(by_op.values()) == 0
    # Both run, and INT8 stays close to FP32 on real rows, on both u8s8 kernel families (8-bit
    # weights: this machine's kernels, and the other family's through its emulating twin).
    X = churn_xy()[0].iloc[2000:2300]
    features = export.feature_schema(fp32, churn_xy()[2], fitted(family))
    expected = onnx_probabilities(fp32, features, X)
    for model, _ in kernel_families.family_models(int8).values():
        got = onnx_probabilities(model, features, X)
        assert np.abs(expected - got).max() < (0.1 if family == "mlp" else 1e-7)


def test_quantizer_does_not_modify_its_input():
    fp32 = exported("mlp")
    before = fp32.SerializeToString()
    quantize.quantize(fp32, quantize.Quantization("QUInt8", per_channel=True, reduce_range=True))
    assert fp32.SerializeToString() == before


def test_linear_as_matmul_quantizes_and_keeps_fp32_parity(tmp_path):
    X, _, roles = churn_xy()
    pipeline = fitted("logistic_regression")
    fp32 = export.convert(pipeline, roles, target_opset=17, linear_as_matmul=True)
    assert "LinearClassifier" not in {n.op_type for n in fp32.graph.node}
    int8 = quantize.quantize(fp32, quantize.Quantization("QInt8"))
    assert quantize.quantized_nodes(fp32, int8)["MatMul"] == 1
    features = export.feature_schema(fp32, roles, pipeline)
    rows = X.iloc[2000:3000]
    expected = pipeline.predict_proba(rows)[:, 1]
    got = onnx_probabilities(fp32, features, rows)
    assert np.abs(expected - got).max() < 1e-4  # the FP32 tolerance in params.yaml


# --- block split, static QDQ, and the exclusion search --------------------------------------------


def mlp_artifacts():
    """The small MLP's FP32 graph, contract and a threshold, plus search rows from training rows."""
    from onnxship.convert import quantize_search
    from onnxship.convert.edge_rows import edge_rows
    from tests.conftest import churn_raw

    pipeline, roles = fitted("mlp"), churn_xy()[2]
    fp32 = export.convert(pipeline, roles, target_opset=17)
    features = export.feature_schema(fp32, roles, pipeline)
    metadata = {"probability_output": spec.PROBABILITY_OUTPUT, "positive_class_index": 1, "threshold": 0.3}
    raw = churn_raw().iloc[:400].reset_index(drop=True)
    edges, _ = edge_rows(raw.iloc[0], features, raw)
    rows = quantize_search.search_rows(raw, features, fp32, metadata, edges)
    return fp32, features, metadata, rows


def test_block_split_computes_the_same_function_and_names_each_blocks_inputs():
    fp32, features, metadata, rows = mlp_artifacts()
    split, plan = block_split.split_block_matmuls(fp32)
    assert [s.matmul for s in plan] == ["MatMul"] and plan[0].sum == "MatMul_sum"
    blocks = plan[0].blocks
    assert [b.node for b in blocks] == ["MatMul_block0", "MatMul_block1"]
    numeric = [i["name"] for i in features["inputs"] if i["role"] == "numeric"]
    categorical = [i["name"] for i in features["inputs"] if i["role"] == "categorical"]
    assert blocks[0].inputs == numeric and blocks[1].inputs == categorical
    assert blocks[0].rows == [0, len(numeric)] and blocks[1].rows[0] == len(numeric)
    # The plan names every node the split added (later steps read it instead of parsing names).
    added = {n.name for n in split.graph.node} - {n.name for n in fp32.graph.node}
    assert added == set(plan[0].nodes)
    from onnxship.convert.quantize_search import score

    before = score(fp32.SerializeToString(), rows.feeds, metadata)["alone"]
    after = score(split.SerializeToString(), rows.feeds, metadata)["alone"]
    assert np.abs(before - after).max() < 1e-6


def test_static_qdq_scores_each_row_independently_of_its_batch():
    fp32, _, metadata, rows = mlp_artifacts()
    split, _ = block_split.split_block_matmuls(fp32)
    int8 = quantize.quantize(
        split,
        quantize.Quantization("QInt8", mode="static"),
        nodes_to_exclude=["MatMul_block0"],
        calibration=rows.calibration_feeds,
    )
    assert "DequantizeLinear" in {n.op_type for n in int8.graph.node}
    assert quantize.quantized_node_names(split, int8) == ["MatMul_block1", "MatMul1"]
    from onnxship.convert.quantize_search import score

    scored = score(int8.SerializeToString(), rows.feeds, metadata)
    # Far-out edge rows in the same batch change nothing: activation ranges are fixed.
    assert np.abs(scored["alone"] - scored["batch"]).max() < 1e-6


def test_static_mode_needs_calibration_rows():
    with pytest.raises(ValueError, match="calibration"):
        quantize.quantize(exported("mlp"), quantize.Quantization("QInt8", mode="static"))


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_search_keeps_unbounded_numeric_block_in_fp32_and_meets_the_target(mode):
    from onnxship.convert.quantize_search import Settings, Target, search

    fp32, _, _, rows = mlp_artifacts()
    target = Target(max_abs_diff=0.05, min_agreement=0.9975)
    settings = Settings(mode, "QInt8", False, False, split_blocks=True, exclude_search=True)
    int8, found = search(fp32, rows, target, settings)
    nodes = {n["node"]: n for n in found["nodes"]}
    assert found["final"]["passed"], found["search"]
    # The one-hot block (values 0/1) is quantized; the numeric block, which carries far-out edge
    # values, is not, and the report says why with the figures of quantizing it alone.
    assert nodes["MatMul_block1"]["quantized"] and nodes["MatMul_block1"]["bytes_saved"] > 0
    assert not nodes["MatMul_block0"]["quantized"]
    assert nodes["MatMul_block0"]["reason"].startswith("kept in FP32: quantizing it breaks the target")
    assert not nodes["MatMul_block0"]["only_this_node_quantized"]["passed"]
    assert len(int8.SerializeToString()) < len(fp32.SerializeToString())
    # The FP32 block is added to the INT8 block's result by one Gemm (x0 @ W0 + rest), not MatMul + Sum.
    ops = {n.name: n.op_type for n in int8.graph.node}
    assert ops["MatMul_block0"] == "Gemm" and "MatMul_sum" not in ops
    # The report's split plan names every node of the INT8 graph that is neither an FP32 node nor
    # made by the quantizer: the split's and the fold's (the Gemm keeps the block's name).
    (plan,) = found["split_plan"]
    assert plan["matmul"] == "MatMul" and plan["sum"] == "MatMul_sum"
    assert [b["node"] for b in plan["blocks"]] == ["MatMul_block0", "MatMul_block1"]
    made = {"DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear", "MatMulInteger", "Mul", "Cast"}
    fp32_names = {n.name for n in fp32.graph.node}
    new = {n.name for n in int8.graph.node if n.name not in fp32_names and n.op_type not in made}
    assert new and new <= set(plan["nodes"])
    # The search's trace starts from everything quantized and ends where it passed.
    assert found["search"][0]["excluded"] == [] and found["search"][-1]["passed"]


def test_search_off_quantizes_every_matmul_and_reports_the_failure():
    from onnxship.convert.quantize_search import Settings, Target, search

    fp32, _, _, rows = mlp_artifacts()
    settings = Settings("dynamic", "QInt8", False, False, split_blocks=False, exclude_search=False)
    _, found = search(fp32, rows, Target(0.05, 0.9975), settings)
    assert [n["quantized"] for n in found["nodes"]] == [True, True]
    assert found["split_plan"] == []  # nothing split
    assert not found["final"]["passed"]  # far-out edge rows: dynamic INT8 of the whole layer fails


def test_the_stage_names_the_stage_to_run_when_its_input_is_missing(tmp_path):
    # quantize_run.load_input reads what export and train wrote; a missing file names its stage.
    from onnxship.convert.quantize_run import load_input
    from onnxship.core.errors import UserError
    from onnxship.core.paths import Artifacts

    paths = Artifacts(tmp_path)
    with pytest.raises(UserError, match=r"model\.onnx not found: run the export stage first"):
        load_input(paths)
    paths.model_onnx.write_bytes(b"")
    with pytest.raises(UserError, match=r"calibration\.csv not found: run the train stage first"):
        load_input(paths)


# --- both u8s8 kernel families ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "weight_type", "seven_bits"),
    [("auto", "QInt8", True), ("auto", "QUInt8", False), (False, "QInt8", False), (True, "QUInt8", True)],
)
def test_reduce_range_auto_means_7_bit_weights_where_the_kernels_can_saturate(
    setting, weight_type, seven_bits
):
    from onnxship.convert.quantize_run import resolve_reduce_range

    assert resolve_reduce_range(setting, weight_type) is seven_bits


def test_the_default_quantization_records_the_cpu_and_holds_on_both_families():
    """With the default params (weight_type: QUInt8, reduce_range: auto, hence 8 bits) the shipped
    INT8 has uint8 weights: the report proves both families compute the same integers (uint8 x
    uint8 kernels never saturate) and records the CPU the search ran on."""
    from pathlib import Path

    from onnxship.contract import cpu
    from onnxship.convert import quantize_run
    from onnxship.core.params import load_params
    from tests.conftest import REPO, churn_raw

    fp32, features, metadata, _ = mlp_artifacts()
    params = load_params(REPO / "params.yaml")
    options = quantize_run.Options.from_params(
        params.quantize, params.parity.tolerances.int8, params.parity.max_edge_rows
    )
    assert options.settings.weight_type == "QUInt8" and options.reduce_range_setting == "auto"
    assert options.settings.reduce_range is False
    calibration = churn_raw().iloc[:400].reset_index(drop=True)
    inputs = quantize_run.QuantizeInput(
        fp32.SerializeToString(), Path("m.onnx"), features, metadata, calibration
    )
    report = quantize_run.quantize_model(inputs, options).report
    assert report["cpu"] == cpu.features() and report["reduce_range"] is False
    assert report["kernel_families"]["proof"]["same_on_both_families"]
    final = report["kernel_families"]["final"]
    assert final[cpu.SATURATING]["passed"] and final[cpu.EXACT]["passed"]
    assert [n["node"] for n in report["nodes"] if n["quantized"]] == ["MatMul_block1"]


def test_a_tree_graph_skips_the_search_and_ships_model_onnx_as_int8(tmp_path):
    # Nothing to quantize: the stage answers at once, without the calibration rows (there are none
    # here), and model.int8.onnx is model.onnx byte for byte, so it scores exactly alike.
    import hashlib

    from onnxship.convert.quantize_run import Options, from_artifacts
    from onnxship.core.params import QuantizeParams, Tolerance
    from onnxship.core.paths import Artifacts

    paths = Artifacts(tmp_path)
    fp32 = exported("hist_gradient_boosting")
    paths.model_onnx.write_bytes(fp32.SerializeToString())
    options = Options.from_params(QuantizeParams(), Tolerance(max_abs_diff=0.1, min_agreement=0.995), 400)
    result = from_artifacts(paths, options)
    assert result.int8_bytes == paths.model_onnx.read_bytes()
    report = result.report
    assert report["nodes_quantized"] == 0 and report["nodes"] == [] and report["search"] == []
    assert report["int8_sha256"] == report["fp32_sha256"] == hashlib.sha256(result.int8_bytes).hexdigest()
    assert report["final"] == {"identical_to_fp32": True, "passed": True}
    assert "nothing to quantize" in report["statement"]
    int8 = onnx.ModelProto.FromString(result.int8_bytes)
    X = churn_xy()[0].iloc[2000:2100]
    features = export.feature_schema(fp32, churn_xy()[2], fitted("hist_gradient_boosting"))
    probs = [onnx_probabilities(model, features, X) for model in (fp32, int8)]
    assert np.array_equal(probs[0], probs[1])

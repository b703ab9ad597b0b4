import numpy as np
import onnx
import pytest
from onnxruntime.quantization import QuantType, quantize_dynamic

from onnxship.convert import export, quantize
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
    int8 = quantize.quantize(model, "QInt8", per_channel=False, reduce_range=False)
    assert sum(quantize.quantized_nodes(model, int8).values()) > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_quantizes_and_reports_honestly(family):
    fp32 = exported(family)
    int8 = quantize.quantize(fp32, "QInt8", per_channel=False, reduce_range=False)
    onnx.checker.check_model(int8)
    by_op = quantize.quantized_nodes(fp32, int8)
    if family == "mlp":
        assert by_op["MatMul"] == 2  # one hidden layer + output layer
        assert len(int8.SerializeToString()) < len(fp32.SerializeToString())
    else:
        # ai.onnx.ml ops are left alone: the INT8 file computes what FP32 does.
        assert sum(by_op.values()) == 0
    # Both run, and INT8 stays close to FP32 on real rows.
    X = churn_xy()[0].iloc[2000:2300]
    features = export.feature_schema(fp32, churn_xy()[2], fitted(family))
    probs = [onnx_probabilities(model, features, X) for model in (fp32, int8)]
    assert np.abs(probs[0] - probs[1]).max() < (0.1 if family == "mlp" else 1e-7)


def test_quantizer_does_not_modify_its_input():
    fp32 = exported("mlp")
    before = fp32.SerializeToString()
    quantize.quantize(fp32, "QUInt8", per_channel=True, reduce_range=True)
    assert fp32.SerializeToString() == before


def test_linear_as_matmul_quantizes_and_keeps_fp32_parity(tmp_path):
    X, _, roles = churn_xy()
    pipeline = fitted("logistic_regression")
    fp32 = export.convert(pipeline, roles, target_opset=17, linear_as_matmul=True)
    assert "LinearClassifier" not in {n.op_type for n in fp32.graph.node}
    int8 = quantize.quantize(fp32, "QInt8", per_channel=False, reduce_range=False)
    assert quantize.quantized_nodes(fp32, int8)["MatMul"] == 1
    features = export.feature_schema(fp32, roles, pipeline)
    rows = X.iloc[2000:3000]
    expected = pipeline.predict_proba(rows)[:, 1]
    got = onnx_probabilities(fp32, features, rows)
    assert np.abs(expected - got).max() < 1e-4  # the FP32 tolerance in params.yaml

"""ONNX Runtime's two u8s8 kernel families, checked on one machine.

The family rules are worked by hand from MLAS's dispatch (onnxruntime/core/mlas/lib/platform.cpp).
The emulating twins are checked three ways on a MatMulInteger whose one pair of products
(2 * 255 * 127 = 64,770) does not fit int16: the exact twin gives what onnx's reference evaluator
gives (the spec's integers), the saturating twin gives int16's 32,767, and the twin of THIS
machine's family gives what this machine's ONNX Runtime gives, bit for bit. Every assertion holds
on both families: none names the result of the CPU it runs on.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from onnxship.contract import cpu, runtime
from onnxship.convert import kernel_families, quantize

AVX512 = {"avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl"}


@pytest.mark.parametrize(
    ("machine", "flags", "family"),
    [
        ("x86_64", {"sse4_1", "avx", "avx2"}, cpu.SATURATING),  # this machine: AMD EPYC, AVX2 only
        ("x86_64", {"avx2", "avx_vnni"}, cpu.EXACT),  # Alder Lake: AVX-VNNI
        ("x86_64", AVX512, cpu.SATURATING),  # Skylake-X: AVX-512BW without VNNI
        ("x86_64", AVX512 | {"avx512_vnni"}, cpu.EXACT),  # Cascade Lake, Zen 4
        ("x86_64", AVX512 | {"avx_vnni"}, cpu.SATURATING),  # AVX-512 core overrides AVX-VNNI
        ("x86_64", AVX512 | {"amx_tile", "amx_int8"}, cpu.EXACT),  # Sapphire Rapids: AMX
        ("x86_64", {"sse4_1"}, cpu.EXACT),  # no AVX2: the SSE kernels widen to int16 first
        ("x86_64", None, cpu.UNKNOWN),  # flags unreadable (not Linux)
        ("aarch64", {"asimd"}, cpu.EXACT),
        ("arm64", None, cpu.EXACT),  # macOS on Apple silicon
        ("riscv64", set(), cpu.UNKNOWN),
    ],
)
def test_kernel_family_follows_mlas_dispatch(machine, flags, family):
    assert cpu.kernel_family(machine, flags) == family


def test_flags_come_from_the_first_processor_and_the_record_is_sorted():
    text = "processor\t: 0\nflags\t\t: fpu avx2 sse avx\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    assert cpu.read_flags(text) == {"fpu", "avx2", "sse", "avx"}
    assert cpu.read_flags("Features\t: fp asimd\n") == {"fp", "asimd"}
    record = cpu.features()
    assert record["kernel_family"] in (*cpu.FAMILIES, cpu.UNKNOWN)
    assert record["flags"] is None or record["flags"] == sorted(set(record["flags"]) & set(cpu.KERNEL_FLAGS))


def matmul_integer(weights: np.ndarray) -> onnx.ModelProto:
    """uint8 activations [N, K] times constant int8 ``weights`` [K, M], zero points 0, int32 out."""
    nodes = [helper.make_node("MatMulInteger", ["a", "w", "azp", "wzp"], ["y"], name="mm")]
    graph = helper.make_graph(
        nodes,
        "mm",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [None, weights.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [None, weights.shape[1]])],
        [
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.array(0, np.uint8), "azp"),
            numpy_helper.from_array(np.array(0, np.int8), "wzp"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, a: np.ndarray) -> np.ndarray:
    return runtime.session(model.SerializeToString()).run(["y"], {"a": a})[0]


def test_one_pair_beyond_int16_separates_the_families_and_the_twins_compute_each():
    model = matmul_integer(np.array([[127], [127], [1]], np.int8))
    a = np.array([[255, 255, 3]], np.uint8)  # the first pair: 2 * 255 * 127 = 64,770
    exact = run(kernel_families.emulate(model, cpu.EXACT), a)
    saturating = run(kernel_families.emulate(model, cpu.SATURATING), a)
    assert exact.tolist() == [[64773]] == ReferenceEvaluator(model).run(["y"], {"a": a})[0].tolist()
    assert saturating.tolist() == [[32767 + 3]]  # the pair clipped to int16, the odd k alone
    if cpu.family() in cpu.FAMILIES:  # whichever family this CPU has, its twin is what it computes
        assert run(model, a).tolist() == {cpu.EXACT: exact, cpu.SATURATING: saturating}[cpu.family()].tolist()


def test_twins_agree_with_the_reference_evaluator_and_with_this_machines_kernels():
    rng = np.random.default_rng(0)
    weights = rng.integers(-128, 128, (37, 5), dtype=np.int8)  # odd K: the last k has no pair
    a = rng.integers(0, 256, (64, 37), dtype=np.uint8)
    model = matmul_integer(weights)
    exact = run(kernel_families.emulate(model, cpu.EXACT), a)
    saturating = run(kernel_families.emulate(model, cpu.SATURATING), a)
    assert np.array_equal(exact, ReferenceEvaluator(model).run(["y"], {"a": a})[0])
    assert np.array_equal(exact, a.astype(np.int64) @ weights.astype(np.int64))
    assert (exact != saturating).sum() > 0  # random 8-bit weights do saturate
    if cpu.family() in cpu.FAMILIES:
        assert np.array_equal(run(model, a), {cpu.EXACT: exact, cpu.SATURATING: saturating}[cpu.family()])


@pytest.mark.parametrize("zero_point", [0, 37])
def test_7_bit_weights_give_the_same_integers_on_both_families(zero_point):
    """The pair bound: |w| <= 64 keeps 2 * 255 * 64 = 32,640 inside int16, whatever the activations,
    and activation zero points are applied after the sum, exactly."""
    rng = np.random.default_rng(1)
    weights = rng.integers(-64, 65, (40, 6), dtype=np.int8)
    weights[:2, 0] = 64  # the worst pair is there
    model = matmul_integer(weights)
    model.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.array(zero_point, np.uint8), "azp"))
    a = rng.integers(0, 256, (50, 40), dtype=np.uint8)
    a[:, :2] = 255
    assert kernel_families.proof(model)["same_on_both_families"]
    exact = run(kernel_families.emulate(model, cpu.EXACT), a)
    assert np.array_equal(exact, run(kernel_families.emulate(model, cpu.SATURATING), a))
    assert np.array_equal(exact, (a.astype(np.int64) - zero_point) @ weights.astype(np.int64))
    assert np.array_equal(exact, run(model, a))  # this machine, whichever family it is


def test_proof_reads_the_weights_of_what_the_quantizer_writes():
    from tests.test_quantize import exported

    fp32 = exported("mlp")
    for how, same in [
        (quantize.Quantization("QInt8"), False),
        (quantize.Quantization("QInt8", reduce_range=True), True),
        (quantize.Quantization("QUInt8"), True),  # u8u8 kernels widen before they add
    ]:
        found = kernel_families.proof(quantize.quantize(fp32, how))
        assert found["same_on_both_families"] is same, (how, found)
        assert len(found["matmuls"]) == 2 and not found["unsupported"]
    assert kernel_families.proof(fp32)["same_on_both_families"]  # nothing quantized


def test_family_models_score_the_model_itself_when_the_proof_holds():
    from tests.test_quantize import exported

    fp32 = exported("mlp")
    seven = quantize.quantize(fp32, quantize.Quantization("QInt8", reduce_range=True))
    eight = quantize.quantize(fp32, quantize.Quantization("QInt8"))
    for native in cpu.FAMILIES:
        models = kernel_families.family_models(seven, native)
        assert all(model is seven for model, _ in models.values())
        other = next(f for f in cpu.FAMILIES if f != native)
        assert models[native][1] == "native" and "proof" in models[other][1]
        models = kernel_families.family_models(eight, native)
        assert models[native] == (eight, "native") and models[other][1] == "emulated"
    unknown = kernel_families.family_models(eight, cpu.UNKNOWN)
    assert {how for _, how in unknown.values()} == {"emulated"}


def test_an_integer_op_the_emulation_does_not_know_is_named():
    model = matmul_integer(np.ones((2, 1), np.int8))
    model.graph.node[0].op_type = "ConvInteger"
    assert kernel_families.proof(model)["unsupported"] == ["mm (ConvInteger)"]
    with pytest.raises(ValueError, match="cannot emulate mm"):
        kernel_families.emulate(model, cpu.EXACT)


@pytest.mark.parametrize(
    "how",
    [
        quantize.Quantization("QInt8"),
        quantize.Quantization("QInt8", per_channel=True),
        quantize.Quantization("QInt8", per_channel=True, mode="static"),
        quantize.Quantization("QUInt8"),
    ],
    ids=["dynamic", "per_channel", "static_per_channel", "quint8"],
)
def test_the_twin_of_this_machines_family_scores_the_real_mlp_as_its_kernels_do(how):
    """Every MatMul of the small MLP INT8 with 8-bit weights, on calibration and far-out edge rows:
    the twin of this CPU's family gives this CPU's probabilities (measured: max diff 0 for every
    quantization here), alone and as one batch; with int8 weights the two families differ (measured:
    1.0 on an edge row dynamic, 1.4e-4 static, whose ranges clip far-out rows), with uint8 not at all."""
    from onnxship.convert.quantize_search import score
    from tests.test_quantize import mlp_artifacts

    if cpu.family() not in cpu.FAMILIES:
        pytest.skip("this CPU's kernel family is unknown")
    fp32, _, metadata, rows = mlp_artifacts()
    int8 = quantize.quantize(fp32, how, calibration=rows.calibration_feeds)
    native = score(int8.SerializeToString(), rows.feeds, metadata)
    twins = {
        f: score(kernel_families.emulate(int8, f).SerializeToString(), rows.feeds, metadata)
        for f in cpu.FAMILIES
    }
    for scored in ("alone", "batch"):
        assert np.abs(twins[cpu.family()][scored] - native[scored]).max() <= 1e-6
    apart = np.abs(twins[cpu.EXACT]["alone"] - twins[cpu.SATURATING]["alone"]).max()
    assert apart == 0 if how.weight_type == "QUInt8" else apart > 0

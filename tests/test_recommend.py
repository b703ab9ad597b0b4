import pytest

from onnxship.core.errors import UserError
from onnxship.verify.recommend import recommend


def benchmark(p50: dict[str, float], batch: int = 1) -> dict:
    sizes = {"sklearn": 900_000, "onnx": 400_000, "int8": 180_000}
    return {
        "settings": {"threads": [1]},
        "backends": {
            b: {"file_bytes": sizes[b], "end_to_end": {"threads_1": {f"batch_{batch}": {"p50_us": v}}}}
            for b, v in p50.items()
        },
    }


def parity(onnx_ok: bool = True, int8_ok: bool = True) -> dict:
    def backend(ok: bool) -> dict:
        return {
            "passed": ok,
            "flipped": 0 if ok else 3,
            "flipped_within_margin": 0 if ok else 3,
            "max_abs_diff": 1e-7 if ok else 0.2,
        }

    return {"margin": 0.01, "backends": {"onnx": backend(onnx_ok), "int8": backend(int8_ok)}}


QUANTIZED = {"nodes_quantized": 2}
NOTHING = {"nodes_quantized": 0}


def test_onnx_wins_when_int8_quantized_nothing():
    choice = recommend(parity(), benchmark({"sklearn": 4100, "onnx": 100, "int8": 90}), NOTHING, 1)
    assert choice["choice"] == "onnx"
    assert "INT8 equals FP32: nothing was quantized" in choice["reasons"]
    assert any(
        "ONNX FP32 41.0x faster than scikit-learn end to end at batch 1" in r for r in choice["reasons"]
    )


def test_int8_wins_when_deployable_quantized_and_at_least_as_fast():
    choice = recommend(parity(), benchmark({"sklearn": 4000, "onnx": 100, "int8": 100}), QUANTIZED, 1)
    assert choice["choice"] == "int8"
    assert "INT8 file is 45% of FP32" in choice["reasons"]


def test_slower_int8_loses_to_fp32():
    choice = recommend(parity(), benchmark({"sklearn": 4000, "onnx": 100, "int8": 120}), QUANTIZED, 1)
    assert choice["choice"] == "onnx"


def test_int8_failing_parity_is_excluded_with_its_flips():
    choice = recommend(
        parity(int8_ok=False), benchmark({"sklearn": 4000, "onnx": 100, "int8": 50}), QUANTIZED, 1
    )
    assert choice["choice"] == "onnx"
    assert any(
        r.startswith("ONNX INT8 failed parity (3 flips, 3 within 0.01 of the threshold")
        for r in choice["reasons"]
    )


def test_scikit_learn_when_no_onnx_backend_passed():
    choice = recommend(
        parity(False, False), benchmark({"sklearn": 4000, "onnx": 100, "int8": 50}), QUANTIZED, 1
    )
    assert choice["choice"] == "sklearn"
    assert any("serve scikit-learn until fixed" in r for r in choice["reasons"])


def test_the_serving_batch_size_decides():
    facts = benchmark({"sklearn": 9000, "onnx": 7000, "int8": 6000}, batch=1024)
    assert recommend(parity(), facts, QUANTIZED, 1024)["choice"] == "int8"
    with pytest.raises(UserError, match="serving_batch_size 64 was not benchmarked"):
        recommend(parity(), facts, QUANTIZED, 64)

"""Stage 5, benchmark: latency (p50/p95/p99), throughput, load time, file size and peak memory of
scikit-learn, ONNX FP32 and ONNX INT8, for the bare model call and end to end from raw rows.

Reads params.yaml (benchmark) and the artifacts. Writes artifacts/benchmark.json and
artifacts/plots/latency.csv. Timings live only in these outputs. The work is
``onnxship.verify.benchmark.run_all``.
"""

from __future__ import annotations

from onnxship.core import files
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run
from onnxship.verify import benchmark

ARTIFACTS = Artifacts()


def main() -> None:
    params = load_params("params.yaml").benchmark
    result = benchmark.run_all(ARTIFACTS, params)
    files.write_json(ARTIFACTS.benchmark, result.report)
    files.atomic_write_text(ARTIFACTS.plot("latency.csv"), result.latency_csv)


if __name__ == "__main__":
    run(main)

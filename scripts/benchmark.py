"""Stage 5, benchmark: latency (p50/p95/p99), throughput, load time, file size and peak memory of
scikit-learn, ONNX FP32 and ONNX INT8, for the bare model call and end to end from raw rows.

Reads params.yaml (benchmark) and the artifacts. Writes artifacts/benchmark.json and
artifacts/plots/latency.csv. Timings live only in these outputs.
"""

from __future__ import annotations

import logging

from onnxship.contract import artifacts
from onnxship.core import files
from onnxship.core.errors import UserError
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run
from onnxship.verify import benchmark, plots, threadlimits

ARTIFACTS = Artifacts()
log = logging.getLogger("benchmark")


def check_int8() -> None:
    """The INT8 file is measured only if it is the one quantize wrote (a clear error here, rather than
    a traceback from the measuring process)."""
    report = files.read_json(ARTIFACTS.quantize_report)
    files.require(report, ARTIFACTS.quantize_report, "int8_sha256")
    if not ARTIFACTS.model_int8.is_file():
        raise UserError(f"{ARTIFACTS.model_int8} not found: run the quantize stage first (dvc repro)")
    if files.sha256_file(ARTIFACTS.model_int8) != report["int8_sha256"]:
        raise UserError(
            f"{ARTIFACTS.model_int8} sha256 differs from {ARTIFACTS.quantize_report}: re-run the quantize "
            "stage (dvc repro) rather than editing its output"
        )


def main() -> None:
    params = load_params("params.yaml").benchmark
    lineage = files.read_json(ARTIFACTS.lineage)
    files.require(lineage, ARTIFACTS.lineage, "chosen.family", "model_sha256", "threshold.value", "roles")
    artifacts.load(ARTIFACTS.root)  # a clear error now if the contract files are missing or refused
    check_int8()
    settings = params.model_dump()
    results = {}
    for backend in benchmark.BACKENDS:
        log.info("measuring %s", backend)
        results[backend] = benchmark.run_isolated(backend, str(ARTIFACTS.root), settings)
    speedups = benchmark.speedups(results)
    mismatches = threadlimits.thread_mismatches(results)
    for line in mismatches:
        log.warning("thread limit not held: %s (threads asked: %s)", line, params.threads)
    report = {
        "model_family": lineage["chosen"]["family"],
        "settings": settings,
        "speedup_p50_vs_sklearn": speedups,
        "backends": results,
        "environment": benchmark.environment(params.threads),
        "thread_mismatches": mismatches,
    }
    files.write_json(ARTIFACTS.benchmark, report)
    files.atomic_write_text(
        ARTIFACTS.plot("latency.csv"), plots.latency_csv(results, benchmark.BACKENDS, params.threads[0])
    )
    for backend in benchmark.BACKENDS[1:]:
        log.info("%s p50 speed-up vs scikit-learn, end to end: %s", backend, speedups["end_to_end"][backend])


if __name__ == "__main__":
    run(main)

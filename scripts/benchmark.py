"""Stage 5, benchmark: latency (p50/p95/p99) and throughput of scikit-learn, ONNX and INT8.

Reads params.yaml (benchmark), the model artifacts and artifacts/test.csv. Writes
artifacts/benchmark.json. Each backend gets the same prepared batch (the bare model call);
single-threaded unless benchmark.threads says otherwise. Timings live only in this output.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from threadpoolctl import threadpool_limits

from onnxship import contract, data, io
from onnxship.benchmark import batch_of, measure
from onnxship.cli import run
from onnxship.data import Roles
from onnxship.params import load_params

ARTIFACTS = Path("artifacts")
log = logging.getLogger("benchmark")


def main() -> None:
    params = load_params("params.yaml").benchmark
    lineage = io.read_json(ARTIFACTS / "lineage.json")
    features = io.read_json(ARTIFACTS / "onnx_features.json")
    metadata = io.read_json(ARTIFACTS / "onnx_metadata.json")
    pipeline = io.load_verified_joblib(ARTIFACTS / "best_model.joblib", lineage["model_sha256"])
    X = data.features(data.read_csv(ARTIFACTS / "test.csv"), Roles(**lineage["roles"]))
    sessions = {
        "onnx": contract.session(str(ARTIFACTS / "model.onnx"), params.threads),
        "int8": contract.session(str(ARTIFACTS / "model.int8.onnx"), params.threads),
    }

    results: dict[str, list[dict]] = {"sklearn": [], "onnx": [], "int8": []}
    with threadpool_limits(limits=params.threads):
        for size in params.batch_sizes:
            batch = batch_of(X, size)
            inputs = contract.feeds(batch, features)
            results["sklearn"].append(
                measure(lambda b=batch: pipeline.predict_proba(b), size, params.warmup, params.repetitions)
            )
            for name, sess in sessions.items():
                results[name].append(
                    measure(
                        lambda s=sess, i=inputs: contract.positive_probability(s, i, metadata),
                        size,
                        params.warmup,
                        params.repetitions,
                    )
                )
    speedup = {
        name: {
            str(sk["batch_size"]): round(sk["p50_us"] / other["p50_us"], 2)
            for sk, other in zip(results["sklearn"], results[name], strict=True)
        }
        for name in sessions
    }
    report = {
        "model_family": lineage["chosen"]["family"],
        "threads": params.threads,
        "speedup_p50_vs_sklearn": speedup,
        "latency": {name: {str(r["batch_size"]): r for r in rows} for name, rows in results.items()},
        "environment": {
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "versions": io.versions("scikit-learn", "onnxruntime", "numpy"),
        },
    }
    io.write_json(ARTIFACTS / "benchmark.json", report)
    for name in sessions:
        log.info("%s p50 speed-up vs scikit-learn by batch size: %s", name, speedup[name])


if __name__ == "__main__":
    run(main)

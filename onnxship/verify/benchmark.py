"""Latency, throughput, load time and memory of each backend, measured the same way for all.

Each backend runs in a fresh process (spawned), so its peak memory is its own and no backend warms
another's caches. Two ways per backend: the bare model call on inputs prepared in advance, and end to
end from raw rows (strings, as read from a CSV) to decisions, which is what a service pays.

Thread limits hold for every backend (``threadlimits``): each process starts with OpenMP and BLAS
capped by the environment, threadpoolctl sets each thread count after the model is loaded, and the
thread counts really in effect during timing are recorded per backend.

``run_all`` is the benchmark stage: the checks, one process per backend, and the report.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from onnxship.contract import artifacts as contract_artifacts
from onnxship.core import files
from onnxship.core.errors import UserError
from onnxship.core.params import BenchmarkParams
from onnxship.core.paths import Artifacts
from onnxship.train import boosters
from onnxship.verify.threadlimits import (
    limit_threads,
    os_thread_count,
    thread_cpu_ticks,
    thread_environment,
    thread_mismatches,
    thread_report,
)

BACKENDS = ("sklearn", "onnx", "int8")
log = logging.getLogger("benchmark")


@dataclass(frozen=True)
class BenchmarkResult:
    """The benchmark stage's outputs, ready to write: benchmark.json and plots/latency.csv."""

    report: dict
    latency_csv: str


def run_all(paths: Artifacts, params: BenchmarkParams) -> BenchmarkResult:
    """Check the artifacts, measure every backend in its own process, and assemble the report."""
    lineage = files.read_required(paths.lineage, "chosen.family", "model_sha256", "threshold.value", "roles")
    contract_artifacts.load(paths.root)  # a clear error now if the contract files are missing or refused
    check_int8(paths)
    settings = params.model_dump()
    results = {}
    for backend in BACKENDS:
        log.info("measuring %s", backend)
        results[backend] = run_isolated(backend, str(paths.root), settings)
    ratios = speedups(results)
    mismatches = thread_mismatches(results)
    for line in mismatches:
        log.warning("thread limit not held: %s (threads asked: %s)", line, params.threads)
    report = {
        "model_family": lineage["chosen"]["family"],
        "reference": reference(lineage["chosen"]["family"]),
        "settings": settings,
        "speedup_p50_vs_sklearn": ratios,
        "backends": results,
        "environment": environment(params.threads),
        "thread_mismatches": mismatches,
    }
    for backend in BACKENDS[1:]:
        log.info("%s p50 speed-up vs scikit-learn, end to end: %s", backend, ratios["end_to_end"][backend])
    return BenchmarkResult(report, latency_csv(results, BACKENDS, params.threads[0]))


def check_int8(paths: Artifacts) -> None:
    """The INT8 file is measured only if it is the one quantize wrote (a clear error here, rather than
    a traceback from the measuring process)."""
    report = files.read_required(paths.quantize_report, "int8_sha256")
    if not paths.model_int8.is_file():
        raise UserError(f"{paths.model_int8} not found: run the quantize stage first (dvc repro)")
    if files.sha256_file(paths.model_int8) != report["int8_sha256"]:
        raise UserError(
            f"{paths.model_int8} sha256 differs from {paths.quantize_report}: re-run the quantize "
            "stage (dvc repro) rather than editing its output"
        )


# A cell never has fewer timed calls than this, whatever one call costs: three give a median.
MIN_SAMPLES = 3


class Repetitions(NamedTuple):
    """How many calls a cell makes after its probe call: ``warmup`` untimed, then at least
    ``timed``; ``reason`` says why they are fewer than benchmark.warmup/min_repetitions (None: not)."""

    warmup: int
    timed: int
    reason: str | None = None


def repetitions(call_s: float, warmup: int, min_repetitions: int, budget_s: float) -> Repetitions:
    """The budget rule: a cell spends about ``budget_s`` seconds, whatever one call costs.

    ``call_s`` is what the probe call took (the first, untimed call). When ``warmup`` +
    ``min_repetitions`` more calls fit in ``budget_s`` (or the budget is 0: exactly
    ``min_repetitions``, the tests' setting), both stand. Otherwise the cell makes the calls that
    fit in the budget, timed ones first, and never fewer than MIN_SAMPLES timed calls: a call of
    279 ms with a 0.5 s budget gets 3 timed calls and no more warm-up (the probe warmed it).
    """
    if budget_s == 0 or (warmup + min_repetitions) * call_s <= budget_s:
        return Repetitions(warmup, min_repetitions)
    fit = int(budget_s / call_s + 1e-9) if call_s > 0 else min_repetitions  # calls that fit in the budget
    timed = max(MIN_SAMPLES, min(min_repetitions, fit))
    extra_warmup = min(warmup, max(0, fit - timed))
    cuts = [f"{extra_warmup} warm-up call(s) instead of {warmup}"]
    if timed < min_repetitions:
        cuts.insert(0, f"{timed} timed call(s) instead of min_repetitions {min_repetitions}")
    reason = (
        f"one call takes {call_s * 1e3:.3g} ms: {' and '.join(cuts)} keep the cell near time_budget_s "
        f"{budget_s:g} (never fewer than {MIN_SAMPLES} timed calls)"
    )
    return Repetitions(extra_warmup, timed, reason)


def measure(
    call: Callable[[], object], batch_size: int, warmup: int, min_repetitions: int, budget_s: float
) -> dict:
    """Time ``call``: one untimed probe call (the first of the ``warmup`` calls), the rest of the
    warm-up, then at least ``min_repetitions`` timed calls and on until ``budget_s`` seconds are spent.
    A slow call gets fewer calls (``repetitions``, the budget rule): the cell says how many and why.
    Latency in microseconds."""
    start = time.perf_counter()
    call()
    plan = repetitions(time.perf_counter() - start, max(warmup - 1, 0), min_repetitions, budget_s)
    for _ in range(plan.warmup):
        call()
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < plan.timed or (plan.reason is None and time.perf_counter() < deadline):
        start_ns = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start_ns) / 1e3)
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])
    return {
        "batch_size": batch_size,
        "samples": len(samples),
        "fewer_samples_because": plan.reason,
        "p50_us": round(float(p50), 2),
        "p95_us": round(float(p95), 2),
        "p99_us": round(float(p99), 2),
        "rows_per_s": round(batch_size / (float(np.mean(samples)) / 1e6), 1),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _scorers(backend: str, artifacts: Artifacts, threads: int, lineage: dict):
    """(load seconds, prepare, model call on prepared inputs, end-to-end call on raw records, ONNX
    Runtime session or None).

    End to end starts from records as a CSV reader gives them (dicts of strings) and ends at the
    decisions: scikit-learn through pandas and the pipeline, ONNX through the standalone scorer,
    whose one-record path is what an online service runs. The ONNX inputs of the bare model call
    are prepared by the same encoder.
    """
    start = time.perf_counter()
    if backend == "sklearn":
        import pandas as pd

        from onnxship.train import table
        from onnxship.train.lineage import load_verified_joblib, positive_column

        pipeline = load_verified_joblib(artifacts.model_joblib, lineage["model_sha256"])
        load_s = time.perf_counter() - start
        # LightGBM and XGBoost predict on the thread count of their n_jobs (1 as trained), not on
        # the OpenMP limit: give them the count measured.
        final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
        boosters.set_predict_threads(final, threads)
        column = positive_column(pipeline.classes_, lineage)
        roles, threshold = table.Roles(**lineage["roles"]), lineage["threshold"]["value"]

        def prepare(records):
            return table.features(pd.DataFrame.from_records(records), roles)

        def model(prepared):
            return pipeline.predict_proba(prepared)[:, column]

        def end_to_end(records):
            return model(prepare(records)) >= threshold

        return load_s, prepare, model, end_to_end, None

    from onnxship.serve.scorer import Scorer

    model_file = None if backend == "onnx" else artifacts.model_int8.name
    scorer = Scorer(artifacts.root, threads=threads, model_file=model_file)
    load_s = time.perf_counter() - start

    def end_to_end(records):
        if len(records) == 1:
            return scorer.score_record(records[0])[1]
        return scorer.score_records(records)[1]

    return load_s, scorer.encoder.encode, scorer.probabilities, end_to_end, scorer.session


def run_backend(backend: str, artifacts: str, settings: dict) -> dict:
    """Measure one backend at every thread count and batch size (runs in its own process)."""
    from onnxship.core.files import read_json
    from onnxship.serve.files import read_csv_records

    paths = Artifacts(Path(artifacts))
    lineage = read_json(paths.lineage)
    records = read_csv_records(paths.test_csv)
    rss_before_load = peak_rss_mb()
    model_file = {"sklearn": paths.model_joblib, "onnx": paths.model_onnx, "int8": paths.model_int8}[backend]
    result = {
        "file_bytes": model_file.stat().st_size,
        "rss_before_load_mb": rss_before_load,
        "model": {},
        "end_to_end": {},
        "threads": {},
    }
    timing = (settings["warmup"], settings["min_repetitions"], settings["time_budget_s"])
    if backend != "sklearn":
        import onnxruntime  # noqa: F401  (its import starts an idle thread: count ONNX Runtime's own after it)
    for threads in settings["threads"]:
        key = f"threads_{threads}"
        gc.collect()  # the previous thread count's session and its pool are gone before counting
        threads_before_load = os_thread_count()
        load_s, prepare, model, end_to_end, session = _scorers(backend, paths, threads, lineage)
        result.setdefault("load_ms", round(load_s * 1e3, 2))
        result["model"][key], result["end_to_end"][key] = {}, {}
        with limit_threads(threads):  # after loading: the model's native libraries are in now
            ticks_before_timing = thread_cpu_ticks()
            for size in settings["batch_sizes"]:
                rows = [records[i % len(records)] for i in range(size)]
                prepared = prepare(rows)
                result["model"][key][f"batch_{size}"] = measure(partial(model, prepared), size, *timing)
                result["end_to_end"][key][f"batch_{size}"] = measure(partial(end_to_end, rows), size, *timing)
            # After warm-up and timing, still under the limit: what the timed calls ran with.
            result["threads"][key] = thread_report(session, threads_before_load, ticks_before_timing)
        del load_s, prepare, model, end_to_end, session
    if backend == "onnx":
        from onnxship.serve.overhead import overhead

        # The scorer's own cost over a bare session.run at batch 1 (goal: at most 30 %).
        with limit_threads(settings["threads"][0]):
            result["scorer_overhead"] = overhead(
                paths.root,
                records[:200],
                repetitions=max(500, settings["min_repetitions"]),
                warmup=settings["warmup"],
                threads=settings["threads"][0],
            )
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def run_isolated(backend: str, artifacts: str, settings: dict) -> dict:
    """``run_backend`` in a fresh spawned process: clean memory figures, no shared warm caches.

    The process starts with OpenMP/BLAS capped at the largest thread count measured (each count is
    then set by ``limit_threads``): no pool it loads is ever sized by the core count.
    """
    with thread_environment(max(settings["threads"])), multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(run_backend, (backend, artifacts, settings))


def reference(family: str) -> dict:
    """What the "sklearn" backend runs: the pipeline's predict_proba, whose final estimator is
    LightGBM's or XGBoost's own predict for those families, scikit-learn's for the others."""
    package = boosters.PACKAGES.get(family, "scikit-learn")
    return {
        "backend": "sklearn",
        "call": "pipeline.predict_proba",
        "library": family if family in boosters.FAMILIES else "scikit-learn",
        "version": files.versions(package)[package],
    }


def speedups(results: dict[str, dict]) -> dict:
    """p50 of scikit-learn divided by p50 of each ONNX backend, cell by cell, from the same run."""
    out: dict = {}
    for mode in ("model", "end_to_end"):
        for backend in BACKENDS[1:]:
            for threads, cells in results[backend][mode].items():
                for batch, cell in cells.items():
                    reference = results["sklearn"][mode][threads][batch]["p50_us"]
                    out.setdefault(mode, {}).setdefault(backend, {}).setdefault(threads, {})[batch] = round(
                        reference / cell["p50_us"], 2
                    )
    return out


def environment(threads: list[int]) -> dict:
    from onnxship.core.files import versions

    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "thread_settings": "one backend per process, started with OMP/OPENBLAS/MKL_NUM_THREADS = "
        "the largest thread count; per count, BLAS/OpenMP limited by threadpoolctl after the model is "
        "loaded; ONNX Runtime intra_op_num_threads = threads, inter_op = 1; measured counts in "
        "backends.<backend>.threads",
        "versions": versions("scikit-learn", "onnxruntime", "numpy", "pandas"),
    }


def latency_csv(results: dict, backends: tuple[str, ...], threads: int) -> str:
    """plots/latency.csv for `dvc plots show`: p50 of the bare model call by batch size, one column
    per backend."""
    key = f"threads_{threads}"
    cells = results[backends[0]]["model"][key]
    rows = [
        (cell["batch_size"], *(results[b]["model"][key][batch]["p50_us"] for b in backends))
        for batch, cell in cells.items()
    ]
    return files.csv_text(["batch_size", *backends], rows)

"""Latency, throughput, load time and memory of each backend, measured the same way for all.

Each backend runs in a fresh process (spawned), so its peak memory is its own and no backend warms
another's caches. Two ways per backend: the bare model call on inputs prepared in advance, and end to
end from raw rows (strings, as read from a CSV) to decisions, which is what a service pays.

Thread limits hold for every backend: the environment caps OpenMP and BLAS before a backend process
starts, threadpoolctl sets each thread count after the model's native libraries are loaded, ONNX
Runtime gets ``intra_op_num_threads = threads`` (inter-op 1), and each process records the thread
counts really in effect during timing (``thread_report``).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import platform
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # the scikit-learn process never imports onnxruntime
    import onnxruntime as ort

BACKENDS = ("sklearn", "onnx", "int8")
MODEL_FILES = {"sklearn": "best_model.joblib", "onnx": "model.onnx", "int8": "model.int8.onnx"}
# Read by OpenMP (libgomp), OpenBLAS and MKL when they load: a process started with these set never
# sizes a pool above them, whatever loads later.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
TASKS = Path("/proc/self/task")  # one entry per OS thread of this process (Linux)


def measure(
    call: Callable[[], object], batch_size: int, warmup: int, min_repetitions: int, budget_s: float
) -> dict:
    """Time ``call`` after ``warmup`` untimed calls: at least ``min_repetitions`` times, and on until
    ``budget_s`` seconds are spent. Latency in microseconds."""
    for _ in range(warmup):
        call()
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < min_repetitions or time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1e3)
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])
    return {
        "batch_size": batch_size,
        "samples": len(samples),
        "p50_us": round(float(p50), 2),
        "p95_us": round(float(p95), 2),
        "p99_us": round(float(p99), 2),
        "rows_per_s": round(batch_size / (float(np.mean(samples)) / 1e6), 1),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- thread limits ------------------------------------------------------------------------------


@contextmanager
def thread_environment(threads: int) -> Iterator[None]:
    """Set ``THREAD_VARIABLES`` to ``threads`` for processes started inside, then restore them.

    A spawned process imports numpy (OpenBLAS) before it runs any of our code, and scikit-learn's
    OpenMP and SciPy's OpenBLAS load later still, while the model is unpickled: only the environment
    the process starts with reaches all of them from the first moment.
    """
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def limit_threads(threads: int):
    """Limit every OpenMP/BLAS pool loaded in this process to ``threads`` (a context manager).

    threadpoolctl reaches only libraries already loaded: call it after the model is loaded, never
    before (a limit set before unpickling left scikit-learn's OpenMP and SciPy's OpenBLAS, which load
    during unpickling, at one thread per core).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def os_thread_count() -> int | None:
    """OS threads of this process right now (None where /proc is missing)."""
    return len(os.listdir(TASKS)) if TASKS.is_dir() else None


def thread_cpu_ticks() -> dict[str, int]:
    """CPU time (user + system, in clock ticks) of each OS thread of this process; {} without /proc."""
    ticks = {}
    for task in os.listdir(TASKS) if TASKS.is_dir() else ():
        try:
            fields = (TASKS / task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        ticks[task] = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks


def thread_report(
    session: ort.InferenceSession | None = None,
    threads_before_load: int | None = None,
    ticks_before_timing: dict[str, int] | None = None,
) -> dict:
    """The thread counts in effect now, as the libraries themselves report them.

    ``libraries``: every OpenMP/BLAS pool threadpoolctl finds in the process, with its own thread
    count. ``onnxruntime`` (when a session is given): the options read back from the session, and
    ``threads``, measured: 1 (the calling thread, which runs the ops itself) plus the OS threads the
    process gained since ``threads_before_load``, taken just before the session was created. ONNX
    Runtime starts its intra-op pool (``intra_op_num_threads`` - 1 workers) when the session is
    created, so the count shows what it really uses, where the options only echo what was asked
    (0 would read back as 0 and mean one thread per core); it assumes nothing else in the process
    starts a thread meanwhile, true of the scorer. ``cpu_busy_threads``: the OS threads whose
    CPU time grew since ``ticks_before_timing`` (clock ticks of 10 ms: a thread that ran less than
    that in short timings can be missed, so it is a lower bound).
    """
    from threadpoolctl import threadpool_info

    now = os_thread_count()
    ticks = thread_cpu_ticks()
    report: dict = {
        "libraries": sorted(
            (
                {
                    "library": Path(pool["filepath"]).name,
                    "internal_api": pool["internal_api"],
                    "num_threads": pool["num_threads"],
                }
                for pool in threadpool_info()
            ),
            key=lambda pool: (pool["internal_api"], pool["library"]),
        ),
        "os_threads": now,
    }
    if ticks_before_timing is not None:
        report["cpu_busy_threads"] = sum(
            1 for task, spent in ticks.items() if spent > ticks_before_timing.get(task, 0)
        )
    if session is not None:
        options = session.get_session_options()
        started = None if now is None or threads_before_load is None else now - threads_before_load
        report["onnxruntime"] = {
            "intra_op_num_threads": options.intra_op_num_threads,
            "inter_op_num_threads": options.inter_op_num_threads,
            "execution_mode": options.execution_mode.name,
            "threads": None if started is None else 1 + started,
        }
    return report


def thread_mismatches(results: dict[str, dict]) -> list[str]:
    """Every measured thread count that differs from the count asked for, one line each ([] if none)."""
    found = []
    for backend, result in results.items():
        for key, report in result["threads"].items():
            asked = int(key.removeprefix("threads_"))
            counts = {pool["library"]: pool["num_threads"] for pool in report["libraries"]}
            if "onnxruntime" in report:
                counts["onnxruntime"] = report["onnxruntime"]["threads"]
            found += [f"{backend} {key}: {name} ran {n}" for name, n in counts.items() if n != asked]
    return found


def _scorers(backend: str, artifacts: Path, threads: int, lineage: dict, features: dict, metadata: dict):
    """(load seconds, prepare, model call on prepared inputs, end-to-end call on raw records, ONNX
    Runtime session or None).

    End to end starts from records as a CSV reader gives them (dicts of strings) and ends at the
    decisions: scikit-learn through pandas and the pipeline, ONNX through the standalone scorer,
    whose one-record path is what an online service runs.
    """
    from onnxship import contract, data, io

    roles = data.Roles(**lineage["roles"])
    start = time.perf_counter()
    if backend == "sklearn":
        pipeline = io.load_verified_joblib(artifacts / MODEL_FILES[backend], lineage["model_sha256"])
        load_s = time.perf_counter() - start
        column = list(pipeline.classes_).index(1)
        threshold = metadata["threshold"]

        def prepare(records):
            return data.features(pd.DataFrame.from_records(records), roles)

        def model(prepared):
            return pipeline.predict_proba(prepared)[:, column]

        def end_to_end(records):
            return model(prepare(records)) >= threshold

        return load_s, prepare, model, end_to_end, None

    from onnxship.scorer import Scorer

    scorer = Scorer(artifacts, threads=threads, model_file=MODEL_FILES[backend])
    load_s = time.perf_counter() - start

    def prepare(records):
        return contract.feeds(data.features(pd.DataFrame.from_records(records), roles), features)

    def model(prepared):
        return contract.positive_probability(scorer.session, prepared, metadata)

    def end_to_end(records):
        if len(records) == 1:
            return scorer.score_record(records[0])[1]
        return scorer.score_records(records)[1]

    return load_s, prepare, model, end_to_end, scorer.session


def run_backend(backend: str, artifacts: str, settings: dict) -> dict:
    """Measure one backend at every thread count and batch size (runs in its own process)."""
    from onnxship import data, io

    artifacts_dir = Path(artifacts)
    lineage = io.read_json(artifacts_dir / "lineage.json")
    features = io.read_json(artifacts_dir / "onnx_features.json")
    metadata = io.read_json(artifacts_dir / "onnx_metadata.json")
    records = data.read_csv(artifacts_dir / "test.csv").to_dict("records")
    rss_before_load = peak_rss_mb()
    result = {
        "file_bytes": (artifacts_dir / MODEL_FILES[backend]).stat().st_size,
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
        load_s, prepare, model, end_to_end, session = _scorers(
            backend, artifacts_dir, threads, lineage, features, metadata
        )
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
        from onnxship.scorer import overhead

        # The scorer's own cost over a bare session.run at batch 1 (goal: at most 30 %).
        with limit_threads(settings["threads"][0]):
            result["scorer_overhead"] = overhead(
                artifacts_dir,
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
    from onnxship.io import versions

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

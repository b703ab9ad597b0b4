"""Thread limits that hold in a benchmark process, and the thread counts it really runs with.

Three settings make a figure "on N threads" true for every backend: the environment a process starts
with (``thread_environment``: OpenMP and BLAS size their pools from it when they load), threadpoolctl
after the model is loaded (``limit_threads``: it reaches only libraries already loaded), and ONNX
Runtime's own session options (intra-op threads = N, inter-op 1, set by the scorer).
``thread_report`` measures what is in effect, from the libraries and from the OS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the scikit-learn process never imports onnxruntime
    import onnxruntime as ort

# Read by OpenMP (libgomp), OpenBLAS and MKL when they load: a process started with these set never
# sizes a pool above them, whatever loads later.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
TASKS = Path("/proc/self/task")  # one entry per OS thread of this process (Linux)


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

import json
import os
import time

from onnxship.core.params import load_params
from onnxship.verify import benchmark, threadlimits


def test_measure_takes_at_least_the_minimum_and_fills_the_budget():
    calls = []
    cell = benchmark.measure(lambda: calls.append(1), batch_size=8, warmup=3, min_repetitions=5, budget_s=0.0)
    assert cell["samples"] == 5 and len(calls) == 8
    assert set(cell) == {
        "batch_size",
        "samples",
        "fewer_samples_because",
        "p50_us",
        "p95_us",
        "p99_us",
        "rows_per_s",
    }
    assert cell["fewer_samples_because"] is None
    assert cell["p50_us"] <= cell["p95_us"] <= cell["p99_us"]
    slow = benchmark.measure(
        lambda: time.sleep(0.002), batch_size=1, warmup=0, min_repetitions=2, budget_s=0.05
    )
    assert slow["samples"] > 2 and slow["p50_us"] >= 2000
    assert 0 < slow["rows_per_s"] <= 500  # every call sleeps at least 2 ms


def test_budget_rule_keeps_the_minimums_when_they_fit_or_the_budget_is_zero():
    # 20 warm-up + 50 timed calls of 2 ms = 0.14 s <= 0.5 s: both stand.
    assert benchmark.repetitions(0.002, 20, 50, 0.5) == benchmark.Repetitions(20, 50)
    # (20 + 50) * 5 ms = 0.35 s <= 0.4 s; at 6 ms it is 0.42 s: cut.
    assert benchmark.repetitions(0.005, 20, 50, 0.4) == benchmark.Repetitions(20, 50)
    assert benchmark.repetitions(0.006, 20, 50, 0.4).reason is not None
    # Budget 0 (the tests' setting) means exactly min_repetitions, however slow the call.
    assert benchmark.repetitions(2.0, 2, 5, 0.0) == benchmark.Repetitions(2, 5)


def test_budget_rule_cuts_a_slow_cell_to_what_fits_and_says_why():
    # The case: 279 ms per call, 0.5 s budget -> 1 call fits; never under 3 timed, no warm-up.
    slow = benchmark.repetitions(0.279, 20, 50, 0.5)
    assert (slow.warmup, slow.timed) == (0, 3)
    assert slow.reason.startswith("one call takes 279 ms: 3 timed call(s) instead of min_repetitions 50")
    # 20 ms: 25 calls fit in 0.5 s, all timed (25 < 50), none left for warm-up.
    assert benchmark.repetitions(0.02, 20, 50, 0.5)[:2] == (0, 25)
    # 8 ms: 62 fit; 50 timed, the other 12 warm up (instead of 20).
    assert benchmark.repetitions(0.008, 20, 50, 0.5)[:2] == (12, 50)


def test_a_slow_call_gets_fewer_samples_and_the_cell_says_so():
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.03)

    cell = benchmark.measure(slow, batch_size=1, warmup=20, min_repetitions=50, budget_s=0.1)
    # probe 0.03 s -> 3 calls fit in 0.1 s: 3 timed, no more warm-up; 4 calls instead of 70.
    assert cell["samples"] == 3 and len(calls) == 4
    assert "3 timed call(s) instead of min_repetitions 50" in cell["fewer_samples_because"]


def test_speedups_are_ratios_of_the_same_cells():
    def backend(p50_1, p50_64):
        cells = {"threads_1": {"batch_1": {"p50_us": p50_1}, "batch_64": {"p50_us": p50_64}}}
        return {"model": cells, "end_to_end": cells}

    ratios = benchmark.speedups(
        {"sklearn": backend(400, 800), "onnx": backend(10, 400), "int8": backend(8, 800)}
    )
    assert ratios["model"]["onnx"]["threads_1"] == {"batch_1": 40.0, "batch_64": 2.0}
    assert ratios["end_to_end"]["int8"]["threads_1"] == {"batch_1": 50.0, "batch_64": 1.0}


def test_onnx_backend_process_never_imports_scikit_learn(tmp_path):
    # The ONNX figures (memory above all) must not include scikit-learn: run the spawned process's
    # imports the way the benchmark stage does and look at sys.modules.
    import subprocess
    import sys

    from tests.conftest import REPO

    code = (
        "import sys, runpy; sys.argv=['x'];"
        "runpy.run_path('scripts/benchmark.py', run_name='__mp_main__');"
        "import onnxship.verify.benchmark, onnxship.serve.scorer;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'joblib')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_thread_environment_caps_spawned_processes_and_restores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    with threadlimits.thread_environment(3):
        assert [os.environ[name] for name in threadlimits.THREAD_VARIABLES] == ["3", "3", "3"]
    assert os.environ["OMP_NUM_THREADS"] == "7" and "OPENBLAS_NUM_THREADS" not in os.environ


def assert_runs_on(threads: int, backend: str, report: dict) -> None:
    libraries = {pool["library"]: pool["num_threads"] for pool in report["libraries"]}
    assert libraries, f"{backend}: threadpoolctl found no pool (numpy's OpenBLAS is always there)"
    assert set(libraries.values()) == {threads}, f"{backend} asked for {threads} threads: {libraries}"
    if backend != "sklearn":
        assert report["onnxruntime"]["intra_op_num_threads"] == threads
        assert report["onnxruntime"]["threads"] == threads, f"{backend}: {report['onnxruntime']}"


def test_the_benchmark_stage_measures_on_the_threads_in_params(project):
    # What the real stage wrote: every backend's pools, as measured during timing, at benchmark.threads.
    threads = load_params(project / "params.yaml").benchmark.threads
    bench = json.loads((project / "artifacts" / "benchmark.json").read_text())
    assert bench["thread_mismatches"] == []
    for backend, result in bench["backends"].items():
        assert set(result["threads"]) == {f"threads_{n}" for n in threads}
        for n in threads:
            assert_runs_on(n, backend, result["threads"][f"threads_{n}"])


def test_every_backend_process_runs_on_each_thread_count(staged):
    # The benchmark stage, run in-process on staged params that ask for threads [1, 2] (each backend
    # process starts capped at 2; threadpoolctl sets 1, then 2, after the model is loaded). The old
    # code set the limit before unpickling, which left the OpenMP and SciPy OpenBLAS pools that
    # scikit-learn loads at one thread per core.
    bench = json.loads((staged.root / "artifacts" / "benchmark.json").read_text())
    assert bench["settings"]["threads"] == [1, 2]
    assert set(bench["backends"]) == set(benchmark.BACKENDS)
    for backend, result in bench["backends"].items():
        for n in (1, 2):
            assert_runs_on(n, backend, result["threads"][f"threads_{n}"])


def test_thread_mismatches_name_each_pool_off_its_count():
    def report(openmp: int, onnxruntime: int | None = None) -> dict:
        out = {"libraries": [{"library": "libgomp.so", "internal_api": "openmp", "num_threads": openmp}]}
        return out | ({"onnxruntime": {"threads": onnxruntime}} if onnxruntime else {})

    results = {
        "sklearn": {"threads": {"threads_1": report(2), "threads_2": report(2)}},
        "onnx": {"threads": {"threads_1": report(1, onnxruntime=2)}},
    }
    assert threadlimits.thread_mismatches(results) == [
        "sklearn threads_1: libgomp.so ran 2",
        "onnx threads_1: onnxruntime ran 2",
    ]

import time

from onnxship.verify import benchmark


def test_measure_takes_at_least_the_minimum_and_fills_the_budget():
    calls = []
    cell = benchmark.measure(lambda: calls.append(1), batch_size=8, warmup=3, min_repetitions=5, budget_s=0.0)
    assert cell["samples"] == 5 and len(calls) == 8
    assert set(cell) == {"batch_size", "samples", "p50_us", "p95_us", "p99_us", "rows_per_s"}
    assert cell["p50_us"] <= cell["p95_us"] <= cell["p99_us"]
    slow = benchmark.measure(
        lambda: time.sleep(0.002), batch_size=1, warmup=0, min_repetitions=2, budget_s=0.05
    )
    assert slow["samples"] > 2 and slow["p50_us"] >= 2000
    assert 0 < slow["rows_per_s"] <= 500  # every call sleeps at least 2 ms


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

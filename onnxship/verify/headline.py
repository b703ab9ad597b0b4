"""The headline: ten numbers from the full reports, for `dvc metrics show` and `dvc metrics diff`.

The full reports (lineage, parity, benchmark, quantize, recommendation) hold hundreds of values;
declared as DVC metrics they made a 374-column table. ``metrics.json`` holds what a reader compares
between two runs, with names short enough that `dvc metrics show` fits in a 160-column terminal:

- ``test_ap``, ``test_auc``: the chosen model's held-out average precision and ROC AUC;
- ``threshold``: the tuned decision threshold (p >= threshold);
- ``onnx_ok``, ``int8_ok``: each backend passed parity; ``onnx_diff_ppm``, ``int8_diff_ppm``: its
  largest |p_sklearn - p_backend|, in millionths (DVC rounds to 5 decimals, which would turn an FP32
  difference of 2.4e-7 into 0.0; 0.24 ppm stays readable);
- ``onnx_x<b>``: ONNX FP32's end-to-end p50 speed-up over scikit-learn at the smallest and the largest
  benchmarked batch size ``b`` (1 and 1024 by default), at the first thread count;
- ``serve``: the recommended backend (``sklearn``, ``onnx`` or ``int8``).
"""

from __future__ import annotations

from onnxship.core import files
from onnxship.core.paths import Artifacts

PPM = 1e6
# What ``headline`` reads from each report (the recommend stage checks the rest of them).
LINEAGE_KEYS = ("test_scores.average_precision", "test_scores.roc_auc", "threshold.value")
BENCHMARK_KEYS = ("settings.threads", "speedup_p50_vs_sklearn.end_to_end.onnx")
PARITY_KEYS = tuple(f"backends.{b}.passed" for b in ("onnx", "int8"))


def headline(lineage: dict, parity: dict, benchmark: dict, recommendation: dict) -> dict:
    """metrics.json's flat record from the reports' already checked contents (see the module doc)."""
    scores = lineage["test_scores"]
    record = {
        "test_ap": scores["average_precision"],
        "test_auc": scores["roc_auc"],
        "threshold": round(lineage["threshold"]["value"], 6),
    }
    for backend in ("onnx", "int8"):
        result = parity["backends"][backend]
        record[f"{backend}_ok"] = bool(result["passed"])
        # A refused backend (it could not run) has no difference to report.
        diff = result.get("max_abs_diff")
        record[f"{backend}_diff_ppm"] = None if diff is None else round(diff * PPM, 4)
    threads = f"threads_{benchmark['settings']['threads'][0]}"
    speedups = benchmark["speedup_p50_vs_sklearn"]["end_to_end"]["onnx"][threads]
    sizes = sorted(int(key.split("_")[1]) for key in speedups)
    for size in dict.fromkeys((sizes[0], sizes[-1])):
        record[f"onnx_x{size}"] = speedups[f"batch_{size}"]
    record["serve"] = recommendation["choice"]
    return record


def from_artifacts(paths: Artifacts, recommendation: dict) -> dict:
    """metrics.json: ``headline`` on the reports under ``paths`` and the stage's recommendation."""
    reports = [
        files.read_required(path, *keys)
        for path, keys in (
            (paths.lineage, LINEAGE_KEYS),
            (paths.parity_report, PARITY_KEYS),
            (paths.benchmark, BENCHMARK_KEYS),
        )
    ]
    return headline(*reports, recommendation)

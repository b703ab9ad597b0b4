"""metrics.json, the headline `dvc metrics show` prints: a dozen numbers picked from the full reports."""

from __future__ import annotations

import pytest

from onnxship.core import files
from onnxship.core.errors import UserError
from onnxship.core.paths import Artifacts
from onnxship.verify.headline import from_artifacts, headline

LINEAGE = {
    "test_scores": {"average_precision": 0.881667, "roc_auc": 0.928839, "f1": 0.83},
    "threshold": {"value": 0.3690616864500939, "rule": "p >= threshold"},
}
PARITY = {
    "backends": {
        "onnx": {"passed": True, "max_abs_diff": 2.444132632950513e-07},
        "int8": {"passed": False, "max_abs_diff": 0.1234567},
    }
}
BENCHMARK = {
    "settings": {"threads": [2, 1]},
    "speedup_p50_vs_sklearn": {
        "end_to_end": {
            "onnx": {
                "threads_1": {"batch_1": 999.0, "batch_1024": 9.0},
                "threads_2": {"batch_64": 25.91, "batch_1": 225.51, "batch_1024": 4.23},
            }
        }
    },
}


def test_the_headline_picks_a_dozen_numbers_from_the_reports():
    assert headline(LINEAGE, PARITY, BENCHMARK, {"choice": "onnx"}) == {
        "test_ap": 0.881667,
        "test_auc": 0.928839,
        "threshold": 0.369062,
        "onnx_ok": True,
        "onnx_diff_ppm": 0.2444,  # 2.444e-7 in millionths: DVC's 5 decimals would print 0.0
        "int8_ok": False,
        "int8_diff_ppm": 123456.7,
        # The first thread count measured, the smallest and largest batch sizes.
        "onnx_x1": 225.51,
        "onnx_x1024": 4.23,
        "serve": "onnx",
    }


def test_one_batch_size_gives_one_speedup_and_a_refused_backend_no_difference():
    bench = {**BENCHMARK, "settings": {"threads": [1]}}
    bench["speedup_p50_vs_sklearn"] = {"end_to_end": {"onnx": {"threads_1": {"batch_64": 30.0}}}}
    parity = {"backends": {**PARITY["backends"], "int8": {"passed": False, "refused": True}}}
    record = headline(LINEAGE, parity, bench, {"choice": "sklearn"})
    assert record["onnx_x64"] == 30.0 and not any(k.startswith("onnx_x1") for k in record)
    assert record["int8_diff_ppm"] is None and record["serve"] == "sklearn"


def test_from_artifacts_reads_the_reports_and_names_an_incomplete_one(tmp_path):
    paths = Artifacts(tmp_path)
    for path, report in zip(
        (paths.lineage, paths.parity_report, paths.benchmark), (LINEAGE, PARITY, BENCHMARK), strict=True
    ):
        files.write_json(path, report)
    assert from_artifacts(paths, {"choice": "int8"})["serve"] == "int8"
    files.write_json(paths.lineage, {"test_scores": LINEAGE["test_scores"]})
    with pytest.raises(UserError, match=r"lineage.json is incomplete \(no 'threshold.value'\)"):
        from_artifacts(paths, {"choice": "int8"})

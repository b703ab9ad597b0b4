"""Stage 6, recommend: which backend to serve, and why, from the measured facts.

Reads params.yaml (recommend), artifacts/parity_report.json, artifacts/benchmark.json and
artifacts/quantize_report.json and artifacts/lineage.json (the model selection reasons, copied).
Writes artifacts/recommendation.json.
"""

from __future__ import annotations

import logging

from onnxship.core import files
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run
from onnxship.verify import recommend as recommend_

ARTIFACTS = Artifacts()
log = logging.getLogger("recommend")


def main() -> None:
    params = load_params("params.yaml").recommend
    reports = {}
    for path, keys in (
        (ARTIFACTS.parity_report, recommend_.PARITY_KEYS),
        (ARTIFACTS.benchmark, recommend_.BENCHMARK_KEYS),
        (ARTIFACTS.quantize_report, recommend_.QUANTIZE_KEYS),
    ):
        reports[path] = files.read_json(path)
        files.require(reports[path], path, *keys)
    choice = recommend_.recommend(*reports.values(), params.serving_batch_size)
    # Why this model (family, tree count) was trained: train's speed-weighted selection.
    choice["model_selection"] = files.read_json(ARTIFACTS.lineage).get("selection")
    files.write_json(ARTIFACTS.recommendation, choice)
    log.info("serve %s: %s", choice["choice_name"], "; ".join(choice["reasons"]))


if __name__ == "__main__":
    run(main)

"""Stage 6, recommend: which backend to serve, and why, from the measured facts.

Reads params.yaml (recommend), artifacts/parity_report.json, artifacts/benchmark.json and
artifacts/quantize_report.json and artifacts/lineage.json (the model selection reasons, copied).
Writes artifacts/recommendation.json.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onnxship import io
from onnxship.cli import run
from onnxship.params import load_params
from onnxship.recommend import recommend

ARTIFACTS = Path("artifacts")
log = logging.getLogger("recommend")


def main() -> None:
    params = load_params("params.yaml").recommend
    choice = recommend(
        io.read_json(ARTIFACTS / "parity_report.json"),
        io.read_json(ARTIFACTS / "benchmark.json"),
        io.read_json(ARTIFACTS / "quantize_report.json"),
        params.serving_batch_size,
    )
    # Why this model (family, tree count) was trained: train's speed-weighted selection.
    choice["model_selection"] = io.read_json(ARTIFACTS / "lineage.json").get("selection")
    io.write_json(ARTIFACTS / "recommendation.json", choice)
    log.info("serve %s: %s", choice["choice_name"], "; ".join(choice["reasons"]))


if __name__ == "__main__":
    run(main)

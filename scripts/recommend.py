"""Stage 6, recommend: which backend to serve, and why, from the measured facts; and the headline.

Reads params.yaml (recommend), artifacts/parity_report.json, artifacts/benchmark.json and
artifacts/quantize_report.json and artifacts/lineage.json (the model selection reasons, copied).
Writes artifacts/recommendation.json (``onnxship.verify.recommend.from_artifacts``) and
artifacts/metrics.json, the dozen numbers `dvc metrics show` prints (``onnxship.verify.headline``).
"""

from __future__ import annotations

import logging

from onnxship.core import files
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run
from onnxship.verify import headline, recommend

ARTIFACTS = Artifacts()
log = logging.getLogger("recommend")


def main() -> None:
    params = load_params("params.yaml").recommend
    choice = recommend.from_artifacts(ARTIFACTS, params.serving_batch_size)
    files.write_json(ARTIFACTS.recommendation, choice)
    files.write_json(ARTIFACTS.metrics, headline.from_artifacts(ARTIFACTS, choice))
    log.info("serve %s: %s", choice["choice_name"], "; ".join(choice["reasons"]))


if __name__ == "__main__":
    run(main)

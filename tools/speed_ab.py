"""scikit-learn vs ONNX on one artifacts folder, robust to a busy machine (not run in CI).

benchmark.json times each backend in its own process by the wall clock, which is right on a quiet
machine; when other jobs share the cores, their load lands on whichever backend runs at that moment.
This tool times every cell in alternating rounds inside one process, by thread CPU time, with
BLAS/OpenMP at 1 thread and ONNX Runtime at 1 intra-op thread; per cell it reports the median over
rounds of each round's median, and the range of the per-round ratio. docs/serving-speed.md quotes it.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python tools/speed_ab.py artifacts [rounds]
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from onnxship.core.files import read_json
from onnxship.serve.scorer import Scorer
from onnxship.train import data
from onnxship.train.lineage import load_verified_joblib


def cells(folder: str) -> dict:
    lineage = read_json(f"{folder}/lineage.json")
    roles = data.Roles(**lineage["roles"])
    pipeline = load_verified_joblib(f"{folder}/best_model.joblib", lineage["model_sha256"])
    threadpool_limits(1)  # after scikit-learn and its native pools are loaded (issue 16)
    scorer = Scorer(folder, threads=1)
    records = data.read_csv(f"{folder}/test.csv").to_dict("records")
    threshold = lineage["threshold"]["value"]

    def sklearn_e2e(rows):
        frame = data.features(pd.DataFrame.from_records(rows), roles)
        return pipeline.predict_proba(frame)[:, 1] >= threshold

    out = {}
    for batch in (1, 1024):
        rows = [records[i % len(records)] for i in range(batch)]
        frame, feeds = data.features(pd.DataFrame.from_records(rows), roles), scorer.encoder.encode(rows)
        out[batch] = {
            ("sklearn", "model"): lambda f=frame: pipeline.predict_proba(f),
            ("sklearn", "end_to_end"): lambda r=rows: sklearn_e2e(r),
            ("onnx", "model"): lambda f=feeds: scorer.probabilities(f),
            ("onnx", "end_to_end"): (lambda r=rows: scorer.score_record(r[0]))
            if batch == 1
            else (lambda r=rows: scorer.score_records(r)),
        }
    return out


def main(folder: str, rounds: int) -> dict:
    timed, samples = cells(folder), {}
    for _ in range(rounds):
        for batch, calls in timed.items():
            for key, call in calls.items():
                n = (40 if key[0] == "sklearn" else 400) if batch == 1 else (8 if key[0] == "sklearn" else 20)
                call()
                times = []
                for _ in range(n):
                    start = time.thread_time_ns()
                    call()
                    times.append(time.thread_time_ns() - start)
                samples.setdefault((batch, *key), []).append(np.median(times) / 1e3)
    report = {}
    for batch in (1, 1024):
        for mode in ("model", "end_to_end"):
            sk, ox = np.array(samples[(batch, "sklearn", mode)]), np.array(samples[(batch, "onnx", mode)])
            ratios = sk / ox
            report[f"{mode}_batch_{batch}"] = {
                "sklearn_us": round(float(np.median(sk)), 1),
                "onnx_us": round(float(np.median(ox)), 1),
                "ratio": round(float(np.median(sk) / np.median(ox)), 1),
                "ratio_range": [round(float(ratios.min()), 1), round(float(ratios.max()), 1)],
            }
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8), indent=1))

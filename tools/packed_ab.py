"""The model call, contract v1 (one [n, 1] input per column) against v2 (packed inputs), on one
graph exported both ways: median seconds of ``session.run`` at each batch size, 1 thread, on inputs
the contract's encoder prepared in advance, the two graphs taking turns, and whether both give the
same bits (not run in CI).

    python -m tools.packed_ab --artifacts artifacts          # a v1 export (e.g. main's bundled model)
    python -m tools.packed_ab --columns 20 2000 --rows 3000  # HGB fitted on generated wide tables

``--artifacts`` packs that folder's model.onnx (v1) as the export stage would; ``--columns`` fits the
default HistGradientBoosting pipeline on tests/datagen.py's ``make_wide_dataset`` and exports it both
ways. Prints one JSON line per graph, with the machine's load average (quiet machines only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from onnxship.contract.encode import Encoder  # noqa: E402
from onnxship.contract.runtime import session, unchecked_run  # noqa: E402
from onnxship.convert import export, graph, packing  # noqa: E402
from onnxship.train.table import Roles  # noqa: E402


def medians(models: list[onnx.ModelProto], feeds: list[dict], budget_s: float = 4.0) -> list[float]:
    """Median seconds of one call of each model on its feeds, the models taking turns in rounds of
    10 calls until ``budget_s`` is spent (>= 20 rounds), so that both see the same machine load."""
    runs = [unchecked_run(session(model.SerializeToString(), 1)) for model in models]
    for run, feed in zip(runs, feeds, strict=True):
        for _ in range(5):
            run(["probabilities"], feed)
    times: list[list[float]] = [[] for _ in runs]
    start, rounds = time.perf_counter(), 0
    while rounds < 20 or (time.perf_counter() - start < budget_s and rounds < 2000):
        for run, feed, spent in zip(runs, feeds, times, strict=True):
            for _ in range(10):
                t0 = time.perf_counter()
                run(["probabilities"], feed)
                spent.append(time.perf_counter() - t0)
        rounds += 1
    return [float(np.median(spent)) for spent in times]


def compare(v1: onnx.ModelProto, roles: Roles, records: list[dict], batches: list[int]) -> dict:
    """Per batch size, v1's and v2's median call (µs), and whether their probabilities are equal."""
    v2 = packing.pack_inputs(graph.copy_model(v1), packing.layout(roles.numeric, roles.categorical))
    out = {"columns": len(roles.features), "numeric": len(roles.numeric)}
    out["categorical"] = len(roles.categorical)
    out["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    encoders = [
        Encoder(export.feature_schema(model, roles, None, {c: [] for c in roles.categorical}, version))
        for version, model in ((1, v1), (2, v2))
    ]
    for batch in batches:
        feeds = [encoder.encode(records[:batch]) for encoder in encoders]
        for version, seconds in zip((1, 2), medians([v1, v2], feeds), strict=True):
            out[f"v{version}_batch{batch}_us"] = round(seconds * 1e6, 1)
    scored = [
        session(model.SerializeToString()).run(["probabilities"], encoder.encode(records))[0]
        for model, encoder in zip((v1, v2), encoders, strict=True)
    ]
    out["identical"] = scored[0].tobytes() == scored[1].tobytes()
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def bundled(folder: Path, batches: list[int]) -> dict:
    features = json.loads((folder / "onnx_features.json").read_text())
    if features["schema_version"] != 1:
        raise SystemExit(f"{folder} holds a contract v{features['schema_version']} export; give a v1 one")
    inputs = features["inputs"]
    roles = Roles(
        numeric=[i["name"] for i in inputs if i["role"] == "numeric"],
        categorical=[i["name"] for i in inputs if i["role"] == "categorical"],
    )
    import pandas as pd

    records = pd.read_csv(folder / "test.csv", dtype=str, keep_default_na=False).to_dict("records")
    return compare(onnx.load(folder / "model.onnx"), roles, records, batches)


def generated(columns: int, rows: int, batches: list[int]) -> dict:
    from onnxship.core.params import DataParams, TrainParams
    from onnxship.train import data, models
    from tests.datagen import make_wide_dataset

    raw = make_wide_dataset(rows, columns, categorical=min(6, columns // 4))
    params = DataParams(path="generated.csv", target="target", positive_label="yes")
    roles = data.infer_roles(raw, params)
    X, y = data.features(raw, roles), data.target(raw, params)
    train = TrainParams(candidates=["hist_gradient_boosting"])
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # OpenMP on a busy 2-core machine is far slower than one thread
        pipeline = models.build_pipeline("hist_gradient_boosting", roles, train).fit(X, y)
    model = export.convert(pipeline, roles, 17)
    return compare(model, roles, raw.drop(columns="target").to_dict("records"), batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path)
    parser.add_argument("--columns", type=int, nargs="*", default=[])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 1024])
    args = parser.parse_args()
    if args.artifacts:
        print(json.dumps({"graph": str(args.artifacts), **bundled(args.artifacts, args.batches)}), flush=True)
    for columns in args.columns:
        print(json.dumps({"graph": "generated", **generated(columns, args.rows, args.batches)}), flush=True)


if __name__ == "__main__":
    main()

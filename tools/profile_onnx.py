"""Where an exported model spends its time: ONNX Runtime's profiler, kernel time per op type at
batch 1 and 1024, 1 thread (not run in CI). docs/serving-speed.md quotes it.

The profiler's per-node timer has microsecond resolution and adds its own cost, so read the shares,
not the absolute figures; ``model_run`` is the whole call including input binding.

    python tools/profile_onnx.py artifacts [model.onnx]
"""

from __future__ import annotations

import collections
import json
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort

from onnxship.contract.encode import Encoder
from onnxship.core.files import read_json
from onnxship.train import data


def profile(folder: str, model_file: str = "model.onnx", batch_sizes=(1, 1024)) -> dict:
    encoder = Encoder(read_json(f"{folder}/onnx_features.json"))
    records = data.read_csv(f"{folder}/test.csv").to_dict("records")
    report = {}
    for batch in batch_sizes:
        feeds = encoder.encode([records[i % len(records)] for i in range(batch)])
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tempfile.gettempdir(), f"onnxship_profile_{batch}")
        session = ort.InferenceSession(f"{folder}/{model_file}", options, providers=["CPUExecutionProvider"])
        for _ in range(2000 if batch == 1 else 60):
            session.run(None, feeds)
        path = session.end_profiling()
        with open(path) as handle:
            events = json.load(handle)
        os.remove(path)
        per_node, op_of, runs = collections.defaultdict(list), {}, []
        for event in events:
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                per_node[event["name"]].append(event["dur"])
                op_of[event["name"]] = event["args"]["op_name"]
            elif event.get("cat") == "Session" and event["name"] == "model_run":
                runs.append(event["dur"])
        by_op = collections.Counter()
        for node, durations in per_node.items():
            by_op[op_of[node]] += float(np.median(durations))
        total = sum(by_op.values())
        report[f"batch_{batch}"] = {
            "model_run_us": float(np.median(runs)),
            "kernels_us": total,
            "share": {op: round(us / total, 3) for op, us in by_op.most_common()},
        }
    return report


if __name__ == "__main__":
    print(json.dumps(profile(*sys.argv[1:]), indent=1))

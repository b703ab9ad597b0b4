"""Time and peak memory of the whole pipeline on a generated dataset (not run in CI).

Generates ROWS rows with tests/datagen.py (10 columns, a ~4,000-level categorical, 10 % missing
cells, ~5 % positives), copies the repo into a temporary git repo pointed at that CSV, and runs
`dvc repro` there with the repo's params otherwise unchanged. Prints one JSON line:
rows, seconds, peak resident memory of the largest process, chosen model and parity verdict.

    python tools/measure_scale.py 10000 100000
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ruamel.yaml import YAML  # noqa: E402

from tests.datagen import make_dataset  # noqa: E402


def measure(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
        for name in files.stdout.split():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
        make_dataset(rows).to_csv(root / "data" / "generated.csv", index=False)
        yaml = YAML()
        params = yaml.load(root / "params.yaml")
        params["data"].update({"path": "data/generated.csv", "target": "status", "positive_label": "churned"})
        with open(root / "params.yaml", "w") as handle:
            yaml.dump(params, handle)
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        stages, seconds = {}, 0.0
        for stage in ("train", "export", "quantize", "parity", "benchmark", "recommend"):
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "dvc", "repro", "--single-item", stage],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
            )
            stages[stage] = round(time.perf_counter() - start, 1)
            seconds += stages[stage]
            if result.returncode:
                break
        # ru_maxrss of children: the largest single process among all that have ended (Linux, KiB).
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out = {
            "rows": rows,
            "exit_code": result.returncode,
            "seconds": round(seconds, 1),
            "stages": stages,
            "peak_rss_mb_largest_process": round(peak_mb, 1),
        }
        if result.returncode == 0:
            lineage = json.loads((root / "artifacts" / "lineage.json").read_text())
            parity = json.loads((root / "artifacts" / "parity_report.json").read_text())
            out.update(
                chosen=lineage["chosen"]["family"],
                test_scores=lineage["test_scores"],
                cv={k: v["mean"] for k, v in lineage["cv"]["candidates"].items()},
                id_like=lineage["roles"]["id_like"],
                parity_passed=parity["passed"],
                onnx_max_abs_diff=parity["backends"]["onnx"]["max_abs_diff"],
                model_onnx_bytes=(root / "artifacts" / "model.onnx").stat().st_size,
            )
        else:
            out["stderr_tail"] = result.stderr[-2000:]
        return out


if __name__ == "__main__":
    for n in sys.argv[1:]:
        print(json.dumps(measure(int(n))), flush=True)

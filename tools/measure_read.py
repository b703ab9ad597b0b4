"""Time and peak memory of train's read and prepare on a generated wide table (not run in CI).

Writes a CSV of ROWS x COLUMNS (mostly 0/1 indicators, some counts and decimals with holes, six
categoricals, a yes/no target), then, in a fresh process per step so the peaks do not mix, reads it
with ``onnxship.train.data.read_csv`` and prepares the training frame (``onnxship.train.run.prepare``:
roles, data checks, the float32/string feature frame, the target). Prints one JSON line: wall and
CPU seconds (CPU time is the fairer figure on a shared machine), peak resident memory, load average.

    python tools/measure_read.py 8000 2000 [--csv /tmp/wide.csv] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

CATEGORICAL = 6


def write_table(path: Path, rows: int, columns: int, seed: int = 0) -> None:
    """A wide table: 80 % 0/1 indicators, 10 % counts, 10 % two-decimal numbers, 5 % holes in the
    last two kinds, CATEGORICAL text columns, and the target ``y`` (yes/no) last."""
    rng = np.random.default_rng(seed)
    numeric = columns - CATEGORICAL - 1
    kinds = rng.choice(3, numeric, p=[0.8, 0.1, 0.1])
    cells = np.empty((rows, columns), dtype=object)
    for j, kind in enumerate(kinds):
        if kind == 0:
            values = (rng.random(rows) < rng.uniform(0.02, 0.5)).astype(int).astype(str)
        elif kind == 1:
            values = rng.poisson(rng.uniform(1, 200), rows).astype(str)
        else:
            values = np.char.mod("%.2f", rng.normal(0, 100, rows))
        if kind:
            values = np.where(rng.random(rows) < 0.05, "", values)
        cells[:, j] = values
    for j in range(CATEGORICAL):
        cells[:, numeric + j] = np.char.add("c", rng.integers(0, 3 + 20 * j, rows).astype(str))
    cells[:, -1] = np.where(rng.random(rows) < 0.2, "yes", "no")
    header = [f"x{j}" for j in range(numeric)] + [f"cat{j}" for j in range(CATEGORICAL)] + ["y"]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(header) + "\n")
        handle.writelines(",".join(row) + "\n" for row in cells.tolist())


STEP = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from onnxship.core.params import DataParams, TrainParams
from onnxship.train import data, run
usage0 = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = usage0.ru_utime + usage0.ru_stime
start = time.perf_counter()
frame = data.read_csv({csv!r})
read_s = time.perf_counter() - start
if {prepare!r}:
    dp = DataParams(path={csv!r}, target="y", positive_label="yes")
    tp = TrainParams(candidates=["logistic_regression"])
    run.prepare(frame, dp, tp)
total_s = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu_s = usage.ru_utime + usage.ru_stime - cpu0
print(json.dumps({{"read_s": round(read_s, 2), "total_s": round(total_s, 2), "cpu_s": round(cpu_s, 2),
                  "peak_mb": round(usage.ru_maxrss / 1024)}}))
"""


def measure(csv: Path, prepare: bool, repo: Path) -> dict:
    code = STEP.format(repo=str(repo), csv=str(csv), prepare=prepare)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("columns", type=int)
    parser.add_argument("--csv", type=Path, help="write (or reuse, if it exists) the table here")
    parser.add_argument("--repo", type=Path, default=REPO, help="measure another code tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = args.csv or Path(tmp) / "wide.csv"
        if not csv.exists():
            start = time.perf_counter()
            write_table(csv, args.rows, args.columns)
            print(f"wrote {csv} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        read = measure(csv, False, args.repo)
        both = measure(csv, True, args.repo)
        size_mb = csv.stat().st_size / 1e6
    print(
        json.dumps(
            {
                "rows": args.rows,
                "columns": args.columns,
                "csv_mb": round(size_mb, 1),
                "read_s": read["read_s"],
                "read_cpu_s": read["cpu_s"],
                "read_peak_mb": read["peak_mb"],
                "read_and_prepare_s": both["total_s"],
                "read_and_prepare_cpu_s": both["cpu_s"],
                "read_and_prepare_peak_mb": both["peak_mb"],
                "load_average": round(os.getloadavg()[0], 1),
            }
        )
    )


if __name__ == "__main__":
    main()

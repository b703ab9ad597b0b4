"""Time and peak memory of the whole pipeline on a generated dataset (not run in CI).

Generates ROWS rows with tests/datagen.py (10 columns, a ~4,000-level categorical, 10 % missing
cells, ~5 % positives), copies the repo into a temporary git repo pointed at that CSV, and runs
`dvc repro` there, stage by stage, with the repo's params otherwise unchanged. ``bundled`` instead
of a row count runs the bundled data as it is; ``wide:ROWSxNUMERIC`` a generated wide table
(tools/wide_table.py: NUMERIC numeric columns, mostly 0/1, 6 categoricals and the target).
Prints one JSON line per size: rows, seconds per stage (wall and CPU), peak resident memory of the
largest process and of all processes together (sampled every 0.2 s), the chosen model, its held-out
scores, the CV means and the parity verdict, the scorer's figures from benchmark.json (per backend,
p50 and rows/s of the model call and end to end at each batch size, with their sample counts; end to
end there starts from records as dicts of strings), the CLI scorer's rows/s on a CSV file of the
held-out rows (``csv_scoring``: batch 1 and 1,024), and the machine's load average
before and after (the figures are only comparable on a quiet machine).

    python tools/measure_scale.py 10000 100000 bundled
    python tools/measure_scale.py wide:8000x1993 wide:8190x1497    # 2,000 and 1,504 columns
    python tools/measure_scale.py --repo /tmp/old-checkout 100000   # measure another code tree
    python tools/measure_scale.py --stages train 100000             # stop after these stages
    python tools/measure_scale.py --set train.n_jobs=1 1000000      # with a knob set (value in YAML)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ruamel.yaml import YAML  # noqa: E402

from tests.datagen import make_dataset  # noqa: E402
from tools.wide_table import POSITIVE, TARGET, write_wide  # noqa: E402

STAGES = ("train", "export", "quantize", "parity", "benchmark", "recommend")


class TreePeak:
    """Samples a process and all its descendants: the peak of their summed RSS, and the CPU time
    each used (last seen; a process that ends between two samples loses at most ``every_s``).
    RUSAGE_CHILDREN would miss joblib's worker processes, which nobody waits for."""

    def __init__(self, pid: int, every_s: float = 0.2):
        self.peak, self.cpu = 0, {}
        self._pid, self._every, self._stop = pid, every_s, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self._pid)
                total = 0
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):  # ended between listing and reading
                        total += proc.memory_info().rss
                        times = proc.cpu_times()
                        self.cpu[(proc.pid, proc.create_time())] = times.user + times.system
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            self._stop.wait(self._every)

    def stop(self) -> tuple[int, float]:
        self._stop.set()
        self._thread.join()
        return self.peak, sum(self.cpu.values())


def set_params(path: Path, settings: list[str]) -> None:
    """Apply ``key.sub=value`` settings (value read as YAML) to params.yaml, sections made as needed."""
    yaml = YAML()
    params = yaml.load(path)
    for setting in settings:
        key, _, text = setting.partition("=")
        *parents, leaf = key.split(".")
        section = params
        for part in parents:
            section = section.setdefault(part, {})
        section[leaf] = YAML(typ="safe").load(text)
    with open(path, "w") as handle:
        yaml.dump(params, handle)


def prepare(root: Path, repo: Path, rows: str, settings: list[str]) -> None:
    """A git repo at ``root`` with ``repo``'s tracked files, the generated CSV and the settings."""
    files = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True)
    for name in files.stdout.split():
        if (repo / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, root / name)
    if rows.startswith("wide"):  # wide:ROWSxNUMERIC, the generated wide table (tools/wide_table.py)
        count, numeric = (int(n) for n in rows.removeprefix("wide:").split("x"))
        write_wide(root / "data" / "generated.csv", count, numeric)
        data = ["data.path=data/generated.csv", f"data.target={TARGET}", f"data.positive_label={POSITIVE}"]
        settings = data + settings
    elif rows != "bundled":
        make_dataset(int(rows)).to_csv(root / "data" / "generated.csv", index=False)
        data = ["data.path=data/generated.csv", "data.target=status", "data.positive_label=churned"]
        settings = data + settings
    set_params(root / "params.yaml", settings)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)


def run_stage(root: Path, stage: str) -> tuple[subprocess.CompletedProcess, float, int, float]:
    """``dvc repro --single-item stage`` in ``root``: the process, its wall seconds, the peak of the
    summed RSS of its process tree and that tree's CPU seconds."""
    # The copy's own package, not the editable install of the checkout it came from.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(root)}
    start = time.perf_counter()
    command = [sys.executable, "-m", "dvc", "repro", "--single-item", stage]
    proc = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = TreePeak(proc.pid)
    stdout, stderr = proc.communicate()
    peak, cpu_s = sampler.stop()
    done = subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
    return done, time.perf_counter() - start, peak, cpu_s


# Run by the measured tree's own Python (PYTHONPATH = the copy): the CLI scorer's score_file on the
# held-out test.csv, its rows repeated to at least 8,192, best of 3, at batch 1 (500 rows) and 1,024.
# In-process, so neither Python's start nor the model's load is counted.
FILE_SCORING = """
import json, sys, tempfile, time
from pathlib import Path
from onnxship.serve.files import FileOptions, score_file
from onnxship.serve.scorer import Scorer
artifacts = Path(sys.argv[1])
header, *rows = (artifacts / "test.csv").read_bytes().splitlines(keepends=True)
out = {}
with tempfile.TemporaryDirectory() as folder:
    source, target = Path(folder) / "in.csv", Path(folder) / "out.csv"
    scorer = Scorer(artifacts)
    for batch, count in ((1, 500), (1024, max(8192, len(rows)))):
        source.write_bytes(header + b"".join(rows[i % len(rows)] for i in range(count)))
        options = FileOptions(batch_size=batch, progress="never")
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            score_file(scorer, source, target, options)
            best = min(best, time.perf_counter() - start)
        out[f"batch {batch}"] = {"rows": count, "rows_per_s": round(count / best)}
print(json.dumps(out))
"""


def file_scoring(root: Path) -> dict:
    """rows/s of the CLI scorer (``score_file``: CSV in, scores out) on the held-out rows."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", FILE_SCORING, str(root / "artifacts")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout)


def results(artifacts: Path) -> dict:
    """What the run chose and how it scored, from whichever of its reports exist."""
    out = {}
    lineage_path, parity_path = artifacts / "lineage.json", artifacts / "parity_report.json"
    if lineage_path.is_file():
        lineage = json.loads(lineage_path.read_text())
        out.update(
            chosen=lineage["chosen"]["family"],
            test_scores=lineage["test_scores"],
            test_rows=lineage["split"]["test_rows"],
            cv={k: v["mean"] for k, v in lineage["cv"]["candidates"].items()},
            screen=lineage["cv"].get("screen"),
            id_like=lineage["roles"]["id_like"],
        )
    out.update(serving(artifacts))
    if parity_path.is_file():
        parity = json.loads(parity_path.read_text())
        out.update(
            parity_passed=parity["passed"],
            onnx_max_abs_diff=parity["backends"]["onnx"]["max_abs_diff"],
            model_onnx_bytes=(artifacts / "model.onnx").stat().st_size,
        )
    return out


def serving(artifacts: Path) -> dict:
    """The scorer's figures from benchmark.json (first thread count): rows/s end to end at batch 1
    and 1024, the bare model call at batch 1 (p50 us), each with its sample count, and what the
    quantize stage decided (its statement)."""
    out = {}
    bench_path, quantize_path = artifacts / "benchmark.json", artifacts / "quantize_report.json"
    if quantize_path.is_file():
        out["quantize"] = json.loads(quantize_path.read_text())["statement"]
    if not bench_path.is_file():
        return out
    bench = json.loads(bench_path.read_text())
    key = f"threads_{bench['settings']['threads'][0]}"
    figures = {}
    for backend, result in bench["backends"].items():
        cells = {
            f"{mode} batch {batch.split('_')[1]}": {
                "p50_us": cell["p50_us"],
                "rows_per_s": cell["rows_per_s"],
                "samples": cell["samples"],
                **({"fewer_samples": True} if cell.get("fewer_samples_because") else {}),
            }
            for mode in ("model", "end_to_end")
            for batch, cell in result[mode][key].items()
        }
        figures[backend] = {**cells, "peak_rss_mb": result["peak_rss_mb"]}
    out["benchmark"] = figures
    return out


def measure(rows: str, repo: Path, stages: tuple[str, ...], settings: list[str]) -> dict:
    """One JSON-able record: each stage's time, CPU and memory, then what the run chose (see main)."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        prepare(root, repo, rows, settings)
        times, peaks, cpu, done = {}, {}, {}, None
        for stage in stages:
            done, seconds, peak, cpu_s = run_stage(root, stage)
            times[stage], peaks[stage], cpu[stage] = (
                round(seconds, 1),
                round(peak / 2**20, 1),
                round(cpu_s, 1),
            )
            if done.returncode:
                break
        out = {
            "rows": rows,
            "set": settings,
            "exit_code": done.returncode,
            "seconds": round(sum(times.values()), 1),
            "stages": times,
            # CPU seconds of all the stage's processes: on a loaded machine the wall times stretch,
            # this much less; on a quiet 2-core machine wall >= cpu / 2.
            "cpu_seconds": cpu,
            # ru_maxrss of children: the largest single process among all that have ended (Linux, KiB).
            "peak_rss_mb_largest_process": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
            ),
            "peak_rss_mb_all_processes": peaks,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
        if done.returncode:
            out["stderr_tail"] = done.stderr[-2000:]  # the stage's own error: what went wrong
            return out
        out |= results(root / "artifacts")
        if "benchmark" in stages:
            out["csv_scoring"] = file_scoring(root)
        return out


def setting(text: str) -> str:
    """A ``--set`` value: KEY=VALUE, the key dotted (train.n_jobs), the value YAML."""
    key, sep, _ = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. train.n_jobs=1)")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="+", help="row counts to generate, or 'bundled'")
    parser.add_argument("--repo", type=Path, default=REPO, help="the code tree to measure (a git checkout)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated, in pipeline order")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=setting,
        metavar="KEY=VALUE",
        help="a knob, e.g. train.n_jobs=1",
    )
    args = parser.parse_args()
    for size in args.sizes:
        result = measure(size, args.repo.resolve(), tuple(args.stages.split(",")), args.set)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

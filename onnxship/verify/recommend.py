"""Which backend to serve: the README's "Which backend?" guide applied to the measured facts.

The rules, in order:
1. A backend is a candidate only if it passed parity (scikit-learn, the reference, always is).
2. INT8 that quantized nothing computes what FP32 does: it is never preferred over FP32.
3. Among candidates, the fastest end-to-end p50 at the batch size you serve wins; INT8 wins over
   FP32 only if it is at least as fast there (it may be smaller, but a slower INT8 is no gain).

``from_artifacts`` is the recommend stage: it reads the reports, checks them, and applies the rules.
"""

from __future__ import annotations

from onnxship.core import files
from onnxship.core.errors import UserError
from onnxship.core.paths import Artifacts

PREFERENCE = ["int8", "onnx", "sklearn"]
NAMES = {"sklearn": "scikit-learn", "onnx": "ONNX FP32", "int8": "ONNX INT8"}
# What ``recommend`` reads from each report (checked first, so a hand-edited file is a clear error).
PARITY_KEYS = ("margin", *(f"backends.{b}.{k}" for b in ("onnx", "int8") for k in ("passed", "reasons")))
BENCHMARK_KEYS = (
    "settings.threads",
    *(f"backends.{b}.{k}" for b in NAMES for k in ("end_to_end", "file_bytes")),
)
QUANTIZE_KEYS = ("nodes_quantized",)


def _p50(benchmark: dict, backend: str, batch: int) -> float:
    threads = f"threads_{benchmark['settings']['threads'][0]}"
    cells = benchmark["backends"][backend]["end_to_end"][threads]
    if f"batch_{batch}" not in cells:
        measured = sorted(int(k.split("_")[1]) for k in cells)
        raise UserError(
            f"recommend.serving_batch_size {batch} was not benchmarked (measured: {measured}); "
            "add it to benchmark.batch_sizes"
        )
    return cells[f"batch_{batch}"]["p50_us"]


def recommend(parity: dict, benchmark: dict, quantize: dict, serving_batch_size: int) -> dict:
    """The backend to serve and the reasons, from the parity report, benchmark and quantize report."""
    p50 = {b: _p50(benchmark, b, serving_batch_size) for b in NAMES}
    size = {b: benchmark["backends"][b]["file_bytes"] for b in NAMES}
    reasons, candidates = [], ["sklearn"]
    for backend in ("onnx", "int8"):
        result = parity["backends"][backend]
        if result["passed"]:
            candidates.append(backend)
        elif result.get("refused"):
            reasons.append(f"{NAMES[backend]} failed parity: {'; '.join(result['reasons'])}")
        else:
            near = result["flipped_within_margin"]
            reasons.append(
                f"{NAMES[backend]} failed parity ({result['flipped']} flips, {near} within "
                f"{parity['margin']} of the threshold; max diff {result['max_abs_diff']:.3g})"
            )
    if quantize["nodes_quantized"] == 0:
        reasons.append("INT8 equals FP32: nothing was quantized")
        if "int8" in candidates:
            candidates.remove("int8")
    # On equal p50, prefer the smaller, then the Python-free backend.
    fastest = min(candidates, key=lambda b: (p50[b], PREFERENCE.index(b)))
    for backend in ("onnx", "int8"):
        if backend in candidates:
            reasons.append(
                f"{NAMES[backend]} {p50['sklearn'] / p50[backend]:.1f}x faster than scikit-learn end to end "
                f"at batch {serving_batch_size} (p50 {p50[backend]:.0f} us vs {p50['sklearn']:.0f} us)"
            )
    if "int8" in candidates:
        reasons.append(f"INT8 file is {size['int8'] / size['onnx']:.0%} of FP32")
    if fastest == "sklearn":
        reasons.append("no ONNX backend passed parity and beat scikit-learn: serve scikit-learn until fixed")
    return {
        "choice": fastest,
        "choice_name": NAMES[fastest],
        "serving_batch_size": serving_batch_size,
        "p50_us_at_serving_batch": p50[fastest],
        "reasons": reasons,
    }


def from_artifacts(paths: Artifacts, serving_batch_size: int) -> dict:
    """recommendation.json: ``recommend`` on the reports under ``paths`` (each checked for the keys
    it needs first), with train's model selection record copied from lineage.json."""
    reports = [
        files.read_required(path, *keys)
        for path, keys in (
            (paths.parity_report, PARITY_KEYS),
            (paths.benchmark, BENCHMARK_KEYS),
            (paths.quantize_report, QUANTIZE_KEYS),
        )
    ]
    choice = recommend(*reports, serving_batch_size)
    # Why this model (family, tree count) was trained: train's speed-weighted selection.
    choice["model_selection"] = files.read_json(paths.lineage).get("selection")
    return choice

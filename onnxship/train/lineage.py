"""What train hands to the later stages, and the checks that it is still what train wrote.

``best_model.joblib`` is unpickled only when its sha256 is the one lineage.json records (unpickling
runs code); ``threshold.txt`` must say what lineage.json says, so an edited threshold can never reach
the contract unnoticed.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from onnxship.core.errors import UserError
from onnxship.core.files import read_json, require, sha256_file
from onnxship.core.paths import Artifacts
from onnxship.train.data import Roles


def joblib_bytes(obj) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def load_verified_joblib(path: str | Path, expected_sha256: str):
    """Unpickle ``path`` only if its sha256 is the one recorded when it was written."""
    import joblib

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found: run the train stage first (dvc repro)")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise UserError(
            f"{path} has sha256 {actual[:12]}..., but lineage.json records {expected_sha256[:12]}...; "
            "refusing to unpickle it: re-run the train stage (dvc repro)"
        )
    return joblib.load(path)


def read_threshold(path: Path) -> float:
    """The number in threshold.txt; a clear error if it is not one."""
    if not path.exists():
        raise UserError(f"{path} not found: run the train stage first (dvc repro)")
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    try:
        value = float(text)
    except ValueError:
        raise UserError(
            f"{path} holds {text[:40]!r}, not a number: re-run the train stage (dvc repro)"
        ) from None
    if not math.isfinite(value):
        raise UserError(f"{path} holds {text!r}: the threshold must be finite; re-run the train stage")
    return value


def threshold_mismatch(threshold: float, lineage: dict, path: Path) -> str | None:
    """Why ``threshold`` (read from ``path``) is not the one train tuned, or None."""
    tuned = lineage["threshold"]["value"]
    if threshold != tuned:
        return f"{path.name} says {threshold!r} but lineage.json records the tuned threshold {tuned!r}"
    return None


# What the later stages read from lineage.json (export's metadata, the benchmark's report).
LINEAGE_KEYS = (
    "model_sha256",
    "threshold.value",
    "roles",
    "target.positive_label",
    "target.negative_label",
    "chosen.family",
)


@dataclass(frozen=True)
class Trained:
    """train's outputs, checked: the lineage, the verified pipeline, its threshold and column roles."""

    lineage: dict
    pipeline: object
    threshold: float
    roles: Roles


def load_trained(artifacts: Artifacts, strict_threshold: bool = True) -> tuple[Trained, list[str]]:
    """Load train's outputs. A threshold.txt that disagrees with lineage.json is an error, or with
    ``strict_threshold=False`` a problem returned for the caller to report (the parity gate's way);
    the tuned threshold in lineage.json is then the one used."""
    lineage = read_json(artifacts.lineage)
    require(lineage, artifacts.lineage, *LINEAGE_KEYS)
    try:
        sha, tuned, roles = lineage["model_sha256"], lineage["threshold"]["value"], Roles(**lineage["roles"])
    except (KeyError, TypeError) as exc:
        raise UserError(
            f"{artifacts.lineage} is incomplete (no {exc}); re-run the train stage (dvc repro)"
        ) from None
    pipeline = load_verified_joblib(artifacts.model_joblib, sha)
    threshold = read_threshold(artifacts.threshold)
    problem = threshold_mismatch(threshold, lineage, artifacts.threshold)
    if problem and strict_threshold:
        raise UserError(f"{problem}: re-run the train stage (dvc repro) rather than editing its outputs")
    return Trained(lineage, pipeline, float(tuned), roles), [problem] if problem else []

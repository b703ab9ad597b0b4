"""What train hands to the later stages: lineage.json, built here, and the checks that train's
outputs are still what train wrote.

``best_model.joblib`` is unpickled only when its sha256 is the one lineage.json records (unpickling
runs code); ``threshold.txt`` must say what lineage.json says, so an edited threshold can never reach
the contract unnoticed.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from onnxship.core.errors import UserError
from onnxship.core.files import read_json, require, sha256_file, versions
from onnxship.core.params import DataParams, TrainParams
from onnxship.core.paths import Artifacts
from onnxship.train import boosters
from onnxship.train.table import Roles


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


# --- Building lineage.json ---------------------------------------------------------------------
# No timings and no thread counts (train.n_jobs): the file must be byte-identical across runs.


@dataclass(frozen=True)
class Dataset:
    """The data a training run read, checked: the CSV as read, its params, the column roles, the
    model's input frame and the 0/1 target of every row."""

    frame: pd.DataFrame
    params: DataParams
    roles: Roles
    X: pd.DataFrame
    y: np.ndarray


@dataclass(frozen=True)
class Decisions:
    """What a training run decided, as lineage.json records it: the screen (None if it did not run),
    the CV figures per family, the selection record, the chosen model and the tuned threshold."""

    screen: dict | None
    candidates: dict
    selection: dict
    chosen: dict
    threshold: float
    objective_value: float


def build(
    dataset: Dataset,
    params: TrainParams,
    split: tuple[int, int],
    decisions: Decisions,
    test_scores: dict,
    model_bytes: bytes,
) -> dict:
    """lineage.json. ``split`` is (train rows, test rows); ``params`` is train's section with early
    stopping decided. The key order is the file's: later stages and diffs read it as written."""
    dp, frame, y = dataset.params, dataset.frame, dataset.y
    return {
        "dataset": {
            "path": dp.path,
            "sha256": sha256_file(dp.path),
            "rows": len(frame),
            "columns": len(frame.columns),
        },
        "target": {
            "column": dp.target,
            "positive_label": str(dp.positive_label),
            "negative_label": negative_label(frame, dp),
            "positive_rate": round(float(y.mean()), 6),
        },
        "roles": dataset.roles.to_dict(),
        "dropped": [c for c in frame.columns if c != dp.target and c not in dataset.roles.features],
        "split": {
            "seed": params.seed,
            "test_size": params.test_size,
            "test_max_rows": params.test_max_rows,
            "stratified": True,
            "train_rows": split[0],
            "test_rows": split[1],
        },
        "cv": {
            "folds": params.cv_folds,
            "metric": params.cv_metric,
            "seed": params.seed,
            "screen": decisions.screen,
            "rows": split[0],
            "candidates": decisions.candidates,
        },
        "chosen": decisions.chosen,
        "selection": decisions.selection,
        "threshold": {
            "value": decisions.threshold,
            "rule": "p >= threshold",
            "objective": params.threshold_objective,
            "objective_value_oof": round(decisions.objective_value, 6),
            # Only when given: the bundled run's lineage.json keeps its bytes.
            **({"source": "train.threshold (given, not tuned)"} if params.threshold is not None else {}),
        },
        "test_scores": test_scores,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "versions": versions(
            *("scikit-learn", "numpy", "scipy", "pandas", "joblib"),
            *boosters.packages(decisions.chosen["family"]),
        ),
    }


def training_categories(X_train: pd.DataFrame, roles: Roles) -> dict[str, list[str]]:
    """Per categorical column, the distinct values the training rows hold ("" = missing left out):
    onnx_features.json's ``categories`` for a model that is not ours, whose encoder we cannot read."""
    return {name: sorted(set(X_train[name]) - {""}) for name in roles.categorical}


def positive_column(classes, lineage: dict) -> int:
    """The column of predict_proba that holds the positive class: the class lineage.json's
    ``chosen.positive_class`` names (a fitted model of yours may use "yes", True or 1), else 1 (train
    fits every model it trains on y == positive, 0/1)."""
    positive = lineage["chosen"].get("positive_class", 1)
    values = [c.item() if isinstance(c, np.generic) else c for c in classes]
    matches = [i for i, c in enumerate(values) if c == positive and type(c) is type(positive)]
    if not matches:
        raise UserError(
            f"the model's classes {values} do not include the positive class {positive!r} that "
            "lineage.json records: re-run the train stage (dvc repro)"
        )
    return matches[0]


def negative_label(frame: pd.DataFrame, params: DataParams) -> str:
    """The target value that is not the positive label (call after ``data.target`` has validated it)."""
    return next(v for v in sorted(frame[params.target].unique()) if v != str(params.positive_label))

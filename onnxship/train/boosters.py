"""LightGBM and XGBoost as model families: their estimators, what they cost to serve, and the thread
count of their predict.

Both libraries are optional: they are imported only when a family or a fitted model needs them, and a
family whose library is missing is refused with one line. Fits are single-threaded with fixed seeds
(LightGBM also ``deterministic`` and ``force_row_wise``): the same data and params give the same trees,
so best_model.joblib and model.onnx are byte-identical from run to run. Trees see ordinal category
codes as plain numbers, as our other tree families do (onnxship.train.models).
"""

from __future__ import annotations

import importlib
import json

import numpy as np

from onnxship.core.errors import UserError

FAMILIES = ("lightgbm", "xgboost")
# The distribution that provides each family (the module is imported under the family's own name).
PACKAGES = {"lightgbm": "lightgbm", "xgboost": "xgboost-cpu"}


def packages(family: str) -> tuple[str, ...]:
    """The distribution of ``family``'s library, for the versions lineage.json records; () for
    scikit-learn's own families (so their artifacts do not change)."""
    return (PACKAGES[family],) if family in PACKAGES else ()


def library(family: str):
    """The imported module of ``family``'s library, or a UserError saying how to install it."""
    try:
        return importlib.import_module(family)
    except ImportError as exc:
        raise UserError(
            f"train.candidates lists {family} but the {family} package cannot be imported ({exc}): "
            f"pip install {PACKAGES[family]}, or remove {family} from train.candidates"
        ) from None


def estimator(family: str, hyper: dict, seed: int):
    """The unfitted LGBMClassifier / XGBClassifier of ``family`` with hyperparameters ``hyper`` (the
    params section as a dict), one thread and ``seed``."""
    if family == "lightgbm":
        # n_jobs=1 with force_row_wise and deterministic: LightGBM's histogram sums do not depend on
        # thread timing, so the fitted trees (and the ONNX file) are the same on every run.
        return library("lightgbm").LGBMClassifier(
            **hyper,
            random_state=seed,
            n_jobs=1,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
    if family == "xgboost":
        # missing=NaN: a NaN input takes each split's learned default branch, as in the ONNX graph.
        return library("xgboost").XGBClassifier(
            **hyper, random_state=seed, n_jobs=1, tree_method="hist", missing=float("nan")
        )
    raise ValueError(f"unknown booster family {family!r}")


def kind(model) -> str | None:
    """The family ("lightgbm" or "xgboost") of ``model``, a fitted final estimator; None for others.
    Read from the class's module, so neither library is imported to ask."""
    module = type(model).__module__.split(".", 1)[0]
    return module if module in FAMILIES else None


def tree_nodes(model) -> float:
    """Nodes (splits and leaves) of every tree of a fitted LightGBM or XGBoost classifier."""
    return float(sum(nodes_per_tree(model)))


def nodes_per_tree(model) -> list[int]:
    """Nodes (splits and leaves) of each tree, in boosting order: what the ONNX tree ensemble holds."""
    if kind(model) == "lightgbm":
        return [2 * tree["num_leaves"] - 1 for tree in model.booster_.dump_model()["tree_info"]]
    return [len(tree["left_children"]) for tree in xgboost_trees(model)]


def staged_probabilities(model, features, counts: list[int]) -> dict[int, np.ndarray]:
    """{count: positive-class probability of ``features`` from the first ``count`` trees} of a fitted
    LightGBM or XGBoost classifier: one fit scores every smaller model (train.selection.tree_counts)."""
    if kind(model) == "lightgbm":
        return {c: model.predict_proba(features, num_iteration=c)[:, 1] for c in counts}
    return {c: model.predict_proba(features, iteration_range=(0, c))[:, 1] for c in counts}


def xgboost_trees(model) -> list[dict]:
    """The trees of a fitted XGBClassifier as XGBoost's JSON model holds them (split_indices,
    split_conditions as float32 values, left_children with -1 for a leaf, default_left...)."""
    raw = model.get_booster().save_raw(raw_format="json")
    return json.loads(raw)["learner"]["gradient_booster"]["model"]["trees"]


def iterations(model) -> int | None:
    """Boosting rounds of a fitted LightGBM or XGBoost classifier (trees, for a binary target)."""
    if kind(model) == "lightgbm":
        return int(model.booster_.current_iteration())
    if kind(model) == "xgboost":
        return int(model.get_booster().num_boosted_rounds())
    return None


def set_predict_threads(model, threads: int) -> bool:
    """Make a fitted LightGBM or XGBoost classifier predict on ``threads`` threads (both take their
    predict thread count from ``n_jobs``, which train fixes at 1); False if ``model`` is neither."""
    if kind(model) is None:
        return False
    model.set_params(n_jobs=threads)  # XGBoost also passes it on to the fitted booster (nthread)
    return True


def version(model) -> str | None:
    """The library of a fitted ``model`` and its version, e.g. "lightgbm 4.7.0"; None for others."""
    name = kind(model)
    if name is None:
        return None
    return f"{name} {importlib.import_module(name).__version__}"

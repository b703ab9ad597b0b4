"""Exact tree thresholds: split thresholds that compare in float32 exactly as scikit-learn compares.

ONNX tree ensembles compare a float32 input with a float32 threshold; scikit-learn compares with a
float64 one, and skl2onnx rounds it to the NEAREST float32. A threshold halfway between two adjacent
float32 values (what a split between two training values is) then rounds up onto the larger value,
and a row holding exactly that value goes left in ONNX and right in scikit-learn.

Every scikit-learn tree here goes left when ``x <= t`` (BRANCH_LEQ, the mode skl2onnx writes for
them): DecisionTree, ExtraTree and the forests and GradientBoosting built of them cast X to float32
first, HistGradientBoosting compares float64 X with ``nodes['num_threshold']`` (NaN follows
``missing_go_to_left``, untouched here). For every float32 x (and none lies in ``(down(t), t]``)::

    x <= t  <=>  x <= down(t)      down(t) = the largest float32 <= t   (BRANCH_LEQ, BRANCH_GT)
    x <  t  <=>  x <  up(t)        up(t)   = the smallest float32 >= t  (BRANCH_LT, BRANCH_GTE)

skl2onnx 1.20 already rounds the DecisionTree family's thresholds down (``adjust_threshold_for_sklearn``
in its tree converters), so their ONNX bytes do not change here; it writes HistGradientBoosting's
``num_threshold`` as it is, and other libraries' converters do what they do. Aligning every tree
ourselves makes the rule hold whatever the converter.

``aligned`` returns a deep copy of a fitted estimator whose every split threshold is replaced by its
directed float32 value, stored back as a float64 (exactly representable). So the copy's own
predictions on float32 inputs are the original's, bit for bit, and skl2onnx's nearest rounding of
the copy's thresholds is exact. We align the estimator before conversion rather than rewrite the ONNX
TreeEnsemble afterwards: the float64 threshold is gone once skl2onnx has written a float32 attribute,
and mapping ONNX nodes back to scikit-learn nodes depends on each converter's node order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxship.convert import boosters

# Libraries whose models are not scikit-learn trees align through their own function, looked up by
# class name (no import of the library here). Each returns the aligned model (a copy), or the tuple
# (aligned model, split thresholds, thresholds moved) to have them counted in the export log.
ALIGNERS: dict[str, Callable[[Any], Any]] = {
    "LGBMClassifier": boosters.lightgbm_aligned,
    "XGBClassifier": boosters.xgboost_aligned,
}


def directed_float32(thresholds: np.ndarray, toward: str = "down") -> np.ndarray:
    """Each float64 threshold rounded to float32 toward minus infinity (``down``: for ``x <= t``)
    or plus infinity (``up``: for ``x < t``), returned as float64 values that float32 holds exactly."""
    values = np.asarray(thresholds, dtype=np.float64)
    with np.errstate(over="ignore"):  # beyond the float32 range: inf, then stepped back below
        rounded = values.astype(np.float32)
    if toward == "down":
        over = rounded.astype(np.float64) > values
        rounded[over] = np.nextafter(rounded[over], np.float32(-np.inf))
    elif toward == "up":
        under = rounded.astype(np.float64) < values
        rounded[under] = np.nextafter(rounded[under], np.float32(np.inf))
    else:
        raise ValueError(f"toward must be 'down' or 'up', not {toward!r}")
    return rounded.astype(np.float64)


@dataclass(frozen=True)
class Aligned:
    """A copy of a fitted estimator with exact float32 thresholds: how many split thresholds it has,
    how many of them moved (the rest were float32 values already), and how many of those the nearest
    float32 lies above (``nearest_above``): where a converter that rounds to nearest mis-branches.
    A library aligner (ALIGNERS) reports no ``nearest_above``."""

    estimator: Any
    thresholds: int
    moved: int
    nearest_above: int = 0


def align(estimator: Any) -> Aligned:
    """A deep copy of ``estimator`` (any nesting: pipelines, column transformers, ensembles, voting,
    stacking, bagging, calibration) with every tree's split thresholds rounded down to float32."""
    counts = [0, 0, 0]
    result = _walk(copy.deepcopy(estimator), counts, set())
    return Aligned(result, *counts)


def aligned(estimator: Any) -> Any:
    """``align(estimator).estimator``: the copy alone."""
    return align(estimator).estimator


def _walk(obj: Any, counts: list[int], seen: set[int]) -> Any:
    """Align every tree reachable from ``obj`` in place; returns ``obj``, or its replacement when a
    library's aligner (ALIGNERS) returns a new model. ``seen`` keeps shared members (VotingClassifier's
    estimators_ and named_estimators_) from being counted twice."""
    if obj is None or isinstance(obj, (str, bytes, int, float, bool, np.generic)) or id(obj) in seen:
        return obj
    seen.add(id(obj))
    aligner = ALIGNERS.get(type(obj).__name__)
    if aligner is not None:
        result = aligner(obj)
        if isinstance(result, tuple):
            result, total, moved = result
            counts[0] += total
            counts[1] += moved
        return result
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            for index in np.ndindex(obj.shape):
                obj[index] = _walk(obj[index], counts, seen)
        return obj
    if isinstance(obj, list):
        obj[:] = [_walk(item, counts, seen) for item in obj]
        return obj
    if isinstance(obj, tuple):
        items = [_walk(item, counts, seen) for item in obj]
        return obj if all(a is b for a, b in zip(items, obj, strict=True)) else type(obj)(items)
    if isinstance(obj, dict):
        for key in list(obj):
            obj[key] = _walk(obj[key], counts, seen)
        return obj
    _align_own_trees(obj, counts)
    if _is_estimator_like(obj):
        for name, value in list(vars(obj).items()):
            new = _walk(value, counts, seen)
            if new is not value:
                setattr(obj, name, new)
    return obj


def _is_estimator_like(obj: Any) -> bool:
    """Objects whose attributes may hold fitted trees: scikit-learn's estimators and helpers
    (CalibratedClassifierCV's _CalibratedClassifier is no BaseEstimator), and any BaseEstimator."""
    from sklearn.base import BaseEstimator

    module = type(obj).__module__ or ""
    return hasattr(obj, "__dict__") and (isinstance(obj, BaseEstimator) or module.startswith("sklearn"))


def _align_own_trees(obj: Any, counts: list[int]) -> None:
    """The thresholds ``obj`` itself stores: a scikit-learn Tree (``tree_``) or a HistGradientBoosting
    predictor (``nodes``)."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    tree = getattr(obj, "tree_", None)
    if isinstance(tree, Tree):
        state = tree.__getstate__()
        nodes = state["nodes"]
        split = nodes["left_child"] != -1
        _round_down(nodes["threshold"], split, counts)
        tree.__setstate__(state)
    elif isinstance(obj, TreePredictor):
        nodes = obj.nodes
        split = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)
        _round_down(nodes["num_threshold"], split, counts)


def _round_down(thresholds: np.ndarray, split: np.ndarray, counts: list[int]) -> None:
    """Round the ``split`` entries of ``thresholds`` down to float32 in place, counting them."""
    before = thresholds[split]
    after = directed_float32(before, "down")
    thresholds[split] = after
    counts[0] += int(split.sum())
    counts[1] += int((after != before).sum())
    with np.errstate(over="ignore"):
        counts[2] += int((before.astype(np.float32).astype(np.float64) > before).sum())

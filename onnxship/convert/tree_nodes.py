"""The split nodes of a fitted model's trees, and which raw column each model input is.

The boundary rows (onnxship.convert.boundary_rows) need both: where the trees split, in the model's
own input space, and which CSV column a model input holds unchanged, so that a row can be built
from raw strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxship.convert import boosters
from onnxship.train.table import Roles

# Models that are no scikit-learn trees list their splits through their own function, looked up by
# class name. It returns either a list of Nodes or (feature index, threshold, "<=" or "<") triples
# (then each split is scored from the first held-out row, reached or not).
SPLITS: dict[str, Callable[[Any], Iterable]] = {
    "LGBMClassifier": boosters.lightgbm_splits,
    "XGBClassifier": boosters.xgboost_splits,
}


@dataclass(frozen=True)
class Nodes:
    """One tree as arrays indexed by node: the input it compares (``feature``) with ``threshold``
    (go left when ``x op threshold``; ``op`` is "<=" or "<"), its children, where NaN goes, whether
    it is a leaf, and whether the model casts its input to float32 before comparing."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    leaf: np.ndarray
    op: str = "<="
    float32: bool = True


def tree_nodes(model: Any, features: np.ndarray | None = None) -> list[Nodes]:
    """Every tree of ``model`` whose inputs are ``model``'s own inputs: a scikit-learn tree, forest,
    GradientBoosting, HistGradientBoosting, the members of Bagging (through its feature subsets),
    Voting, Stacking (not the final estimator, which reads the members' outputs) and
    CalibratedClassifierCV, or a library model listed in SPLITS. ``features`` maps the tree's
    input index to the model's (Bagging). A Pipeline member is not traced."""
    name = type(model).__name__
    if name in SPLITS:
        found = list(SPLITS[name](model))
        trees = found if all(isinstance(t, Nodes) for t in found) else flat_nodes(found)
        return [_remap(t, features) for t in trees]
    tree = getattr(model, "tree_", None)
    if tree is not None and hasattr(tree, "children_left"):
        missing = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, dtype=np.uint8))
        nodes = Nodes(
            tree.feature,
            tree.threshold,
            tree.children_left,
            tree.children_right,
            missing.astype(bool),
            tree.children_left == -1,
        )
        return [_remap(nodes, features)]
    if hasattr(model, "_predictors"):
        if getattr(model, "_preprocessor", None) is not None:
            return []  # inputs reordered by HistGradientBoosting's own categorical preprocessing
        return [_remap(_hgb_nodes(p), features) for stage in model._predictors for p in stage]
    members: list[tuple[Any, np.ndarray | None]] = []
    if hasattr(model, "estimators_features_"):
        pairs = zip(model.estimators_, model.estimators_features_, strict=True)
        members = [(m, np.asarray(f)) for m, f in pairs]
    elif hasattr(model, "estimators_"):
        held = model.estimators_  # GradientBoosting: a 2-D array of trees; the others: a list
        members = [(m, None) for m in (held.ravel() if isinstance(held, np.ndarray) else held)]
    elif hasattr(model, "calibrated_classifiers_"):
        members = [(c.estimator, None) for c in model.calibrated_classifiers_]
    found = []
    for member, subset in members:
        mapped = subset if features is None or subset is None else features[subset]
        found += tree_nodes(member, features if subset is None else mapped)
    return found


def _hgb_nodes(predictor: Any) -> Nodes:
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool) | nodes["is_categorical"].astype(bool)  # category sets: skipped
    return Nodes(
        nodes["feature_idx"].astype(np.int64),
        nodes["num_threshold"],
        nodes["left"].astype(np.int64),
        nodes["right"].astype(np.int64),
        nodes["missing_go_to_left"].astype(bool),
        leaf,
        float32=False,
    )


def flat_nodes(splits: Iterable[tuple[int, float, str]]) -> list[Nodes]:
    """One single-split tree per (feature, threshold, op): every row reaches its split."""
    trees = []
    for feature, threshold, op in splits:
        trees.append(
            Nodes(
                np.array([feature, 0, 0]),
                np.array([threshold, 0.0, 0.0]),
                np.array([1, -1, -1]),
                np.array([2, -1, -1]),
                np.zeros(3, dtype=bool),
                np.array([False, True, True]),
                op,
            )
        )
    return trees


def _remap(nodes: Nodes, features: np.ndarray | None) -> Nodes:
    if features is None:
        return nodes
    feature = np.where(nodes.leaf, 0, features[np.where(nodes.leaf, 0, nodes.feature)])
    return Nodes(
        feature,
        nodes.threshold,
        nodes.left,
        nodes.right,
        nodes.missing_left,
        nodes.leaf,
        nodes.op,
        nodes.float32,
    )


def input_columns(pipeline: Any, roles: Roles) -> list[str | None]:
    """Per input of ``pipeline``'s last step, the raw numeric column it holds unchanged on every
    non-missing value, or None (a transformed or categorical input). Passthrough (an identity
    FunctionTransformer once fitted) and a SimpleImputer without indicator keep their columns; a
    ColumnTransformer routes them; any other step's outputs are untraced."""
    steps = list(getattr(pipeline, "steps", [("model", pipeline)]))[:-1]
    columns: list[str | None] = list(roles.features)
    for _, step in steps:
        columns = _through(step, columns)
    return [c if c in roles.numeric else None for c in columns]


def _through(step: Any, columns: list[str | None]) -> list[str | None]:
    """The raw column behind each output of ``step`` given the raw column behind each of its inputs."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if step is None or step == "passthrough" or _identity(step):
        return columns
    if isinstance(step, Pipeline):
        for _, inner in step.steps:
            columns = _through(inner, columns)
        return columns
    if not isinstance(step, ColumnTransformer):
        return [None] * _width(step, len(columns))
    names = list(getattr(step, "feature_names_in_", [c or "" for c in columns]))
    out: list[str | None] = [None] * _width(step, len(columns))
    for name, transformer, selected in step.transformers_:
        where = step.output_indices_[name]
        if transformer == "drop" or where.stop == where.start:
            continue
        try:
            picked = [columns[i] for i in _positions(selected, names)]
        except (ValueError, IndexError, TypeError):  # a selection we cannot map back: left untraced
            continue
        for offset, column in enumerate(_through(transformer, picked)[: where.stop - where.start]):
            out[where.start + offset] = column
    return out


def _identity(step: Any) -> bool:
    """A step whose output is its input on every non-missing value, column for column."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(step, FunctionTransformer):
        return step.func is None  # how a fitted ColumnTransformer holds "passthrough"
    if not isinstance(step, SimpleImputer) or step.add_indicator:
        return False
    stats = step.statistics_
    # An all-missing column is dropped (unless keep_empty_features), so the outputs would shift.
    return stats.dtype.kind != "f" or step.keep_empty_features or not np.isnan(stats).any()


def _positions(selected: Any, names: list[str]) -> list[int]:
    """Column positions a ColumnTransformer selected (names, positions or a boolean mask)."""
    if isinstance(selected, slice):
        return list(range(len(names)))[selected]
    values = list(np.atleast_1d(selected))
    if values and isinstance(values[0], (bool, np.bool_)):
        return [i for i, keep in enumerate(values) if keep]
    return [names.index(v) if isinstance(v, str) else int(v) for v in values]


def _width(step: Any, n_in: int) -> int:
    """How many outputs a fitted step gives."""
    try:
        return len(step.get_feature_names_out())
    except Exception:  # a step without feature names: assume it keeps the width
        return n_in

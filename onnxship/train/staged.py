"""The scores of every smaller boosting model, read from one fitted model per fold.

A boosting model of N trees contains the models of 1..N trees: its staged predictions score every
tree count of train.selection.tree_counts without another fit. The family CV computes them in the
same fit that gives the fold's score (onnxship.train.training), so the tree-count scan
(onnxship.train.sizes) needs no second round of fits on the same folds.
"""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline

from onnxship.core.params import TrainParams
from onnxship.train import boosters

# Families whose tree count is scanned, and the hyperparameter that sets it.
TREE_COUNT = {"hist_gradient_boosting": "max_iter", "lightgbm": "n_estimators", "xgboost": "n_estimators"}

# One fold's staged scores: the positive-class probability of the scored rows after each tree
# (None where no tree count needs it), and the nodes of each tree.
Stages = tuple[list[np.ndarray | None], list[int]]


def tree_counts(family: str, params: TrainParams) -> list[int] | None:
    """The tree counts scanned for ``family`` (train.selection.tree_counts below its maximum, and the
    maximum), or None for a family without a tree count."""
    if family not in TREE_COUNT:
        return None
    most = getattr(getattr(params, family), TREE_COUNT[family])
    return sorted({c for c in params.selection.tree_counts if c < most} | {most})


def fold_stages(model: Pipeline, X_score, counts: list[int]) -> Stages:
    """``Stages`` of a fitted pipeline on the rows ``X_score``. Only the stages a count reads are
    kept (a fold that stopped early gives its last stage to every larger count)."""
    booster = model.steps[-1][1]
    features = model[:-1].transform(X_score)
    if boosters.kind(booster) is not None:  # no early stopping: every count is reached
        staged = boosters.staged_probabilities(booster, features, counts)
        return [staged.get(i + 1) for i in range(max(counts))], boosters.nodes_per_tree(booster)
    nodes = [sum(len(p.nodes) for p in stage) for stage in booster._predictors]
    wanted = {min(count, len(nodes)) - 1 for count in counts}
    stages = [p[:, 1] if i in wanted else None for i, p in enumerate(booster.staged_predict_proba(features))]
    return stages, nodes

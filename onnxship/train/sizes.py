"""What a fitted model costs to serve, the CV scores of smaller boosting models, and the selection
that ships the cheapest candidate within the CV noise of the best (rules in onnxship.train.select).

Cost is counted in the exported graph's own units: tree nodes for tree ensembles (TreeEnsemble
evaluates a path through every tree, so its time grows with the number of trees), weights for
linear models and MLPs. Tree counts are scored from staged predictions: one fit per fold gives the
scores of every smaller model, with the same folds as the family CV.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from onnxship.core.params import TrainParams
from onnxship.train import boosters
from onnxship.train.select import Candidate, choose, within_noise
from onnxship.train.staged import TREE_COUNT as TREE_COUNT  # re-exported: run.refit reads it here
from onnxship.train.staged import Stages, fold_stages, tree_counts
from onnxship.train.training import SCORERS, CVResult


def model_cost(pipeline) -> float | None:
    """Tree nodes (tree ensembles, single trees, LightGBM, XGBoost) or weights (linear models, MLPs)
    of the fitted estimator (the last step of a Pipeline, or the estimator itself); None for any
    other model (a kernel, a neighbour or a voting model of your own): its cost is not guessed."""
    model = pipeline.steps[-1][1] if isinstance(pipeline, Pipeline) else pipeline
    if boosters.kind(model) is not None:  # LightGBM, XGBoost: splits and leaves of every tree
        return boosters.tree_nodes(model)
    if hasattr(model, "_predictors"):  # HistGradientBoosting: one predictor per iteration (binary)
        return float(sum(len(p.nodes) for stage in model._predictors for p in stage))
    if hasattr(model, "tree_"):
        return float(model.tree_.node_count)
    if hasattr(model, "estimators_"):  # forests: a list of trees; gradient boosting: an array of them
        trees = np.asarray(model.estimators_, dtype=object).ravel()
        if all(hasattr(t, "tree_") for t in trees):
            return float(sum(t.tree_.node_count for t in trees))
        return None
    if hasattr(model, "coefs_"):
        return float(sum(w.size for w in model.coefs_) + sum(b.size for b in model.intercepts_))
    if hasattr(model, "coef_"):
        return float(np.size(model.coef_) + np.size(getattr(model, "intercept_", 0)))
    return None


def _staged_fold(pipeline: Pipeline, X, y, fit_idx, score_idx, counts: list[int]) -> Stages:
    """Fit on ``fit_idx`` and score every tree count on ``score_idx`` (``staged.fold_stages``)."""
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = clone(pipeline).fit(X.iloc[fit_idx], y[fit_idx])
    return fold_stages(model, X.iloc[score_idx], counts)


def tree_count_candidates(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    counts: list[int],
    params: TrainParams,
    folds: list[Stages] | None = None,
) -> tuple[list[Candidate], dict[str, np.ndarray]]:
    """A candidate per tree count (CV fold scores, mean tree nodes) and its out-of-fold probabilities.

    ``folds``: the stages the family CV already computed on the same folds (the same fits), else
    each fold is fitted here. A fold that stopped early (fewer trees than a count) scores its last
    stage for that count: a model allowed more trees would stop at the same place.
    """
    splits = list(
        StratifiedKFold(n_splits=params.cv_folds, shuffle=True, random_state=params.seed).split(X, y)
    )
    if folds is None:
        # n_jobs workers of one OpenMP/BLAS thread each: no nested parallelism on the cores.
        folds = Parallel(n_jobs=params.n_jobs)(
            delayed(_staged_fold)(pipeline, X, y, f, s, counts) for f, s in splits
        )
    candidates, oof = [], {}
    for count in counts:
        name = f"{count} trees"
        oof[name] = np.empty(len(y), dtype=np.float64)
        scores, nodes = [], []
        for (_, score_idx), (stages, tree_nodes) in zip(splits, folds, strict=True):
            used = min(count, len(stages))
            oof[name][score_idx] = stages[used - 1]
            scores.append(float(SCORERS[params.cv_metric](y[score_idx], stages[used - 1])))
            nodes.append(sum(tree_nodes[:used]))
        candidates.append(Candidate(name, scores, cost=float(np.mean(nodes))))
    return candidates, oof


def select_model(
    results: dict[str, CVResult],
    build: Callable[[str], Pipeline],
    X: pd.DataFrame,
    y: np.ndarray,
    params: TrainParams,
) -> tuple[str, int | None, np.ndarray, dict]:
    """(family, tree count or None, its out-of-fold probabilities, the record for lineage.json).

    First the family: a family within the noise of the best is fitted once to measure its cost
    (only then). Then, for a boosting family, the tree count from ``selection.tree_counts``.
    """
    sp = params.selection
    families = [Candidate(f, results[f].fold_scores) for f in results]  # the screen's finalists
    near = within_noise(families, sp.noise_sigmas, sp.max_score_loss)
    if sp.prefer_cheaper and len(near) > 1:
        costs = {f: model_cost(_fit(build(f), X, y)) for f in near}
        families = [Candidate(c.name, c.fold_scores, costs.get(c.name)) for c in families]
    by_family = choose(families, sp.noise_sigmas, sp.max_score_loss, sp.prefer_cheaper, what="family")
    family = by_family.choice
    record = {"rule": _rule(params), "family": by_family.to_dict()}
    if family not in TREE_COUNT:
        return family, None, results[family].oof_probability, record
    counts = tree_counts(family, params)
    folds = results[family].fold_stages  # computed by the family CV on the same folds
    sizes, oof = tree_count_candidates(build(family), X, y, counts, params, folds)
    by_size = choose(sizes, sp.noise_sigmas, sp.max_score_loss, sp.prefer_cheaper, what="tree count")
    record["tree_count"] = {
        **by_size.to_dict(),
        "scores": {c.name: {"mean": round(c.mean, 6), "tree_nodes": c.cost} for c in sizes},
    }
    count = int(by_size.choice.split()[0])
    return family, count, oof[by_size.choice], record


def _fit(pipeline: Pipeline, X, y) -> Pipeline:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return pipeline.fit(X, y)


def _rule(params: TrainParams) -> str:
    sp = params.selection
    if not sp.prefer_cheaper:
        return "highest mean CV score"
    return (
        f"cheapest (tree nodes / weights) among candidates whose fold-paired CV loss against the best is "
        f"<= min({sp.noise_sigmas:g} standard errors, {sp.max_score_loss:g})"
    )

"""The train stage as one function: ``train(frame, data_params, train_params) -> TrainResult``.

The steps, each a function below: check the data and decide column roles; hold out a stratified
test split; screen the candidates on a sample (large data only) and cross-validate the finalists;
select the cheapest model within the CV noise of the best (``onnxship.train.select``); tune the
threshold on its out-of-fold probabilities; refit it on every training row; score the test split.
Nothing here writes a file: ``scripts/train.py`` writes what the result holds.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from onnxship.core.errors import UserError
from onnxship.core.params import DataParams, TrainParams
from onnxship.train import checks, data, factories, fitted, lineage, models, sizes, training

log = logging.getLogger("train")

# A pipeline for a family, to be fitted on a given number of rows (which resolves its cost knobs).
Builder = Callable[[str, int], Pipeline]


@dataclass(frozen=True)
class TrainResult:
    """What the train stage writes: the pickled model, its threshold, lineage.json, which rows of
    the CSV are the test split and the calibration sample, and the test split's labels and
    probabilities (for the ROC and precision-recall curves)."""

    model_bytes: bytes
    threshold: float
    lineage: dict
    test_rows: list[int]
    calibration_rows: list[int]
    y_test: np.ndarray
    p_test: np.ndarray


@dataclass(frozen=True)
class Search:
    """The model search's outcome: the screen's record (None if it did not run), CV per finalist,
    the chosen family and tree count (None: not a boosting family), its out-of-fold probabilities
    and the selection record."""

    screen: dict | None
    results: dict[str, training.CVResult]
    family: str
    tree_count: int | None
    oof: np.ndarray
    selection: dict


@dataclass(frozen=True)
class Refit:
    """The chosen pipeline fitted on every training row, its hyperparameters as fitted, and the
    iterations it ran (None for the forest)."""

    model: Pipeline
    hyperparameters: dict
    iterations: int | None


# Raises a UserError if the unfitted pipeline of a candidate (named) will not convert to ONNX.
Check = Callable[[Pipeline, str], None]


def train(frame: pd.DataFrame, dp: DataParams, tp: TrainParams, check: Check | None = None) -> TrainResult:
    """Train on the CSV ``frame`` (every cell a string, as ``data.read_csv`` reads it). ``check``
    (the stage passes onnxship.convert.support.check_convertible; train may not import convert)
    sees every candidate's unfitted pipeline before any CV time is spent on it."""
    dataset = prepare(frame, dp, tp)
    idx_train, idx_test = split_rows(dataset.y, tp)
    X_train, y_train = dataset.X.iloc[idx_train], dataset.y[idx_train]
    checks.check_screen_sample(y_train, tp)
    log.info(
        "%d rows, %d train / %d test; %d numeric, %d categorical features",
        len(dataset.y),
        len(idx_train),
        len(idx_test),
        len(dataset.roles.numeric),
        len(dataset.roles.categorical),
    )
    if tp.fitted_model is not None:
        return fitted_result(dataset, idx_train, idx_test, tp)
    tp = models.decide_early_stopping(tp, len(y_train), len(dataset.roles.features))
    checks.check_validation_split(y_train, tp)

    def build(family: str, rows: int) -> Pipeline:
        if factories.is_factory(family):
            return factories.build(family, dataset.roles)
        return models.build_pipeline(family, dataset.roles, tp, rows=rows)

    for family in tp.candidates:  # each factory imported and checked, each candidate convertible, before CV
        candidate = build(family, len(y_train))
        if check is not None:
            check(candidate, family)
    found = search(build, X_train, y_train, tp)
    threshold, objective_value = threshold_for(y_train, found.oof, tp)
    refitted = refit(build, found, X_train, y_train, tp)
    y_test = dataset.y[idx_test]
    p_test = refitted.model.predict_proba(dataset.X.iloc[idx_test])[:, 1]
    scores = training.test_scores(y_test, p_test, threshold)
    log.info(
        "chose %s, threshold %.4f (%s %.4f), test %s",
        found.family,
        threshold,
        tp.threshold_objective,
        objective_value,
        scores,
    )
    model_bytes = lineage.joblib_bytes(models.machine_independent(refitted.model))
    decisions = lineage.Decisions(
        screen=found.screen,
        candidates=cv_summary(found.results),
        selection=found.selection,
        chosen=chosen(found.family, refitted, tp, len(y_train)),
        threshold=threshold,
        objective_value=objective_value,
    )
    record = lineage.build(dataset, tp, (len(idx_train), len(idx_test)), decisions, scores, model_bytes)
    if factories.is_factory(found.family):
        record["training_categories"] = lineage.training_categories(X_train, dataset.roles)
    return TrainResult(
        model_bytes, threshold, record, idx_test, calibration_rows(idx_train, tp), y_test, p_test
    )


def fitted_result(dataset: lineage.Dataset, idx_train, idx_test, tp: TrainParams) -> TrainResult:
    """train.fitted_model: the model you already have, shipped without CV (onnxship.train.fitted)."""
    shipped = fitted.ship(dataset, (idx_train, idx_test), tp)
    return TrainResult(
        shipped.model_bytes,
        shipped.threshold,
        shipped.lineage,
        idx_test,
        calibration_rows(idx_train, tp),
        shipped.y_test,
        shipped.p_test,
    )


def prepare(frame: pd.DataFrame, dp: DataParams, tp: TrainParams) -> lineage.Dataset:
    """Check the data against params.yaml and decide the column roles; a UserError names the fix."""
    data.check_bounds(frame, dp)
    typed = data.type_columns(frame, dp)
    roles = typed.roles
    data.check_category_lengths(frame, roles, dp)
    for name, reason in typed.id_reasons.items():
        log.warning(
            "not using ID-like column '%s' (%s): list it under data.%s to keep it as a feature",
            name,
            reason,
            "numeric" if reason.startswith("integers") else "categorical",
        )
    empty = data.all_missing_columns(frame, roles)
    if empty:
        raise UserError(f"columns {empty} have no values at all: list them under data.drop")
    X, y = data.features(frame, roles, typed.parsed), data.target(frame, dp)
    check_class_sizes(y, tp.cv_folds)
    return lineage.Dataset(frame, dp, roles, X, y)


def check_class_sizes(y: np.ndarray, folds: int) -> None:
    """The smaller class needs two rows per fold: one fold's worth for the test split, and one in
    each of the ``folds`` CV folds. A first check on the whole file, naming the data; split_rows
    then checks what train.test_size actually leaves on each side."""
    minority = min(y.sum(), len(y) - y.sum())
    if minority < 2 * folds:
        raise UserError(
            f"the minority class has {minority} rows; need at least "
            f"{2 * folds} for a stratified split and {folds}-fold CV"
        )


def held_out(rows: int, tp: TrainParams) -> float | int:
    """The test split: train.test_size of the rows, at most train.test_max_rows (the rest trains)."""
    if tp.test_max_rows is not None and tp.test_size * rows > tp.test_max_rows:
        return tp.test_max_rows
    return tp.test_size


def split_rows(y: np.ndarray, tp: TrainParams) -> tuple[list[int], list[int]]:
    """(training rows, test rows): a stratified split, seeded by train.seed. A UserError if either
    side is too small for its job (checked on the split itself: the whole file's class counts say
    nothing about what train.test_size leaves for CV)."""
    test = held_out(len(y), tp)
    # scikit-learn's own sizes: ceil of a share for the test split, the rest trains. Under two rows
    # on a side (fewer than the classes) it refuses to split at all: that side lacks a class.
    n_test = test if isinstance(test, int) else math.ceil(test * len(y))
    if len(y) - n_test < 2:
        check_training_classes(np.zeros(max(len(y) - n_test, 0), dtype=int), tp)
    if n_test < 2:
        check_test_classes(np.zeros(n_test, dtype=int), tp)
    idx_train, idx_test = train_test_split(range(len(y)), test_size=test, stratify=y, random_state=tp.seed)
    check_training_classes(y[idx_train], tp)
    check_test_classes(y[idx_test], tp)
    return idx_train, idx_test


def check_training_classes(y_train: np.ndarray, tp: TrainParams) -> None:
    """Stratified CV needs train.cv_folds training rows of each class: else a fold has none of it
    (its score is undefined) or scikit-learn refuses to fold."""
    minority = int(min(y_train.sum(), len(y_train) - y_train.sum()))
    if minority < tp.cv_folds:
        raise UserError(
            f"train.test_size {tp.test_size} leaves {len(y_train)} training rows, {minority} of the "
            f"smaller class; train.cv_folds {tp.cv_folds} needs at least {tp.cv_folds}: lower "
            f"train.test_size or train.cv_folds"
        )


def check_test_classes(y_test: np.ndarray, tp: TrainParams) -> None:
    """The test scores and the ROC and precision-recall curves need both classes among the test rows."""
    minority = int(min(y_test.sum(), len(y_test) - y_test.sum()))
    if minority < 1:
        capped = len(y_test) == tp.test_max_rows
        raise UserError(
            f"train.test_size {tp.test_size} holds out {len(y_test)} test rows"
            f"{f' (capped by train.test_max_rows {tp.test_max_rows})' if capped else ''}, none of one "
            f"class; test scores and curves need both: raise "
            f"{'train.test_max_rows' if capped else 'train.test_size'}"
        )


def calibration_rows(idx_train: list[int], tp: TrainParams) -> list[int]:
    """A seeded sample of training rows (never test rows), in file order, for the quantize stage:
    calibrating or searching INT8 on test rows would grade it on its own homework."""
    n = min(tp.calibration_rows, len(idx_train))
    chosen_rows = np.random.default_rng(tp.seed).choice(np.asarray(idx_train), size=n, replace=False)
    return sorted(int(i) for i in chosen_rows)


def screen(build: Builder, X: pd.DataFrame, y: np.ndarray, tp: TrainParams) -> tuple[list[str], dict | None]:
    """(the finalists, the screen's record). On more than train.screen.rows training rows and more
    than train.screen.keep candidates, CV on a stratified sample keeps the best; else all go on."""
    finalists = list(tp.candidates)
    if tp.screen.rows is None or len(y) <= tp.screen.rows or len(finalists) <= tp.screen.keep:
        return finalists, None
    sample = training.stratified_subsample(y, tp.screen.rows, tp.seed)
    screened = training.cross_validate_all(
        build, finalists, X.iloc[sample], y[sample], training.CVPlan.from_params(tp), stage="screen"
    )
    finalists = training.finalists(screened, finalists, tp.screen.keep)
    for family, result in screened.items():
        log.info("screen %s: CV %s %.4f +/- %.4f", family, tp.cv_metric, result.mean, result.std)
    log.info("screen on %d rows keeps %s for CV on all %d training rows", len(sample), finalists, len(y))
    return finalists, {
        "rows": len(sample),
        "keep": tp.screen.keep,
        "kept": finalists,
        "candidates": cv_summary(screened),
    }


def search(build: Builder, X: pd.DataFrame, y: np.ndarray, tp: TrainParams) -> Search:
    """Screen, cross-validate the finalists on every training row, and select the model to ship."""
    finalists, screen_record = screen(build, X, y, tp)
    results = training.cross_validate_all(build, finalists, X, y, training.CVPlan.from_params(tp))
    for family, result in results.items():
        log.info("%s: CV %s %.4f +/- %.4f", family, tp.cv_metric, result.mean, result.std)
    family, tree_count, oof, selection = sizes.select_model(results, lambda f: build(f, len(y)), X, y, tp)
    log.info(
        "selection: %s",
        "; ".join(selection["family"]["reasons"] + selection.get("tree_count", {}).get("reasons", [])),
    )
    return Search(screen_record, results, family, tree_count, oof, selection)


def refit(build: Builder, found: Search, X: pd.DataFrame, y: np.ndarray, tp: TrainParams) -> Refit:
    """Fit the chosen family (at the chosen tree count) on every training row, on at most
    train.refit_threads OpenMP threads."""
    final = build(found.family, len(y))
    if factories.is_factory(found.family):
        hyperparameters = factories.json_params(final)
    else:
        hyperparameters = getattr(tp, found.family).model_dump()
    if found.tree_count is not None:
        knob = sizes.TREE_COUNT[found.family]
        hyperparameters[knob] = found.tree_count
        final.set_params(**{f"model__{knob}": found.tree_count})
    threads = min(tp.refit_threads, os.cpu_count() or 1)
    start = time.perf_counter()
    model = training.fit_final(final, X, y, threads)
    iterations = training.fitted_iterations(model)
    log.info(
        "refit %s on %d rows: %s%.1f s on %d OpenMP thread(s)",
        found.family,
        len(y),
        "" if iterations is None else f"{iterations} iterations, ",
        time.perf_counter() - start,
        threads,
    )
    return Refit(model, hyperparameters, iterations)


def threshold_for(y: np.ndarray, p: np.ndarray, tp: TrainParams) -> tuple[float, float]:
    """(threshold, objective value at it): train.threshold as given, or tuned on ``p``."""
    if tp.threshold is not None:
        return tp.threshold, training.objective_at(y, p, tp.threshold, tp.threshold_objective)
    return training.tune_threshold(y, p, tp.threshold_objective)


def cv_summary(results: dict[str, training.CVResult]) -> dict:
    """CV figures per family for lineage.json (no timings: the file is byte-identical across runs)."""
    return {
        f: {
            "mean": round(r.mean, 6),
            "std": round(r.std, 6),
            "folds": [round(s, 6) for s in r.fold_scores],
            "iterations": r.fold_iterations,
        }
        for f, r in results.items()
    }


def chosen(family: str, fitted: Refit, tp: TrainParams, rows: int) -> dict:
    """lineage.json's record of the shipped model, fitted on ``rows`` rows."""
    return {
        "family": family,
        "hyperparameters": fitted.hyperparameters,
        "resolved": models.resolved(family, tp, rows),
        "iterations": fitted.iterations,
        "stopped_early": stopped_early(family, tp, fitted.iterations, rows),
    }


def stopped_early(family: str, tp: TrainParams, iterations: int | None, rows: int) -> bool | None:
    """Whether the refit stopped on its validation split before max_iter (None: no early stopping)."""
    if not models.resolved(family, tp, rows).get("early_stopping"):
        return None
    return iterations is not None and iterations < getattr(tp, family).max_iter

"""Stage 1, train: compare candidate pipelines by CV, tune the threshold, refit the best.

Reads params.yaml (data, train) and the CSV at data.path. Writes artifacts/best_model.joblib,
artifacts/threshold.txt, artifacts/lineage.json and artifacts/test.csv (the held-out rows, raw).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time

import numpy as np
from sklearn.model_selection import train_test_split

from onnxship.core import files
from onnxship.core.errors import UserError
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run
from onnxship.train import data, models, sizes, training
from onnxship.train.lineage import joblib_bytes
from onnxship.verify import plots

ARTIFACTS = Artifacts()
log = logging.getLogger("train")


def main() -> None:
    params = load_params("params.yaml")
    dp, tp = params.data, params.train
    frame = data.read_csv(dp.path)
    data.check_bounds(frame, dp)
    roles = data.infer_roles(frame, dp)
    data.check_category_lengths(frame, roles, dp)
    if roles.id_like:
        log.warning(
            "not using ID-like columns %s (a distinct value in nearly every row); list them "
            "under data.categorical to keep them",
            roles.id_like,
        )
    empty = data.all_missing_columns(frame, roles)
    if empty:
        raise UserError(f"columns {empty} have no values at all: list them under data.drop")
    X, y = data.features(frame, roles), data.target(frame, dp)
    if min(y.sum(), len(y) - y.sum()) < 2 * tp.cv_folds:
        raise UserError(
            f"the minority class has {min(y.sum(), len(y) - y.sum())} rows; need at least "
            f"{2 * tp.cv_folds} for a stratified split and {tp.cv_folds}-fold CV"
        )
    idx_train, idx_test = train_test_split(
        range(len(y)), test_size=held_out(len(y), tp), stratify=y, random_state=tp.seed
    )
    X_train, y_train = X.iloc[idx_train], y[idx_train]
    log.info(
        "%d rows, %d train / %d test; %d numeric, %d categorical features",
        len(y),
        len(idx_train),
        len(idx_test),
        len(roles.numeric),
        len(roles.categorical),
    )

    tp = models.decide_early_stopping(tp, len(y_train))

    def pipelines(family: str, rows: int):
        return models.build_pipeline(family, roles, tp, rows=rows)

    cv_args = (tp.cv_folds, tp.cv_metric, tp.seed, tp.n_jobs)
    screen, finalists = None, list(tp.candidates)
    if tp.screen.rows is not None and len(y_train) > tp.screen.rows and len(finalists) > tp.screen.keep:
        sample = training.stratified_subsample(y_train, tp.screen.rows, tp.seed)
        screened = training.cross_validate_all(
            pipelines, finalists, X_train.iloc[sample], y_train[sample], *cv_args, stage="screen"
        )
        finalists = training.finalists(screened, finalists, tp.screen.keep)
        for family, result in screened.items():
            log.info("screen %s: CV %s %.4f +/- %.4f", family, tp.cv_metric, result.mean, result.std)
        log.info(
            "screen on %d rows keeps %s for CV on all %d training rows", len(sample), finalists, len(y_train)
        )
        screen = {
            "rows": len(sample),
            "keep": tp.screen.keep,
            "kept": finalists,
            "candidates": summary(screened),
        }
    results = training.cross_validate_all(pipelines, finalists, X_train, y_train, *cv_args)
    for family, result in results.items():
        log.info("%s: CV %s %.4f +/- %.4f", family, tp.cv_metric, result.mean, result.std)
    best, tree_count, oof, selection = sizes.select_model(
        results, lambda f: pipelines(f, len(y_train)), X_train, y_train, tp
    )
    log.info(
        "selection: %s",
        "; ".join(selection["family"]["reasons"] + selection.get("tree_count", {}).get("reasons", [])),
    )
    threshold, objective_value = training.tune_threshold(y_train, oof, tp.threshold_objective)
    hyperparameters = getattr(tp, best).model_dump()
    final = pipelines(best, len(y_train))
    if tree_count is not None:
        hyperparameters["max_iter"] = tree_count
        final.set_params(model__max_iter=tree_count)
    threads = min(tp.refit_threads, os.cpu_count() or 1)
    start = time.perf_counter()
    model = training.fit_final(final, X_train, y_train, threads)
    iterations = training.fitted_iterations(model)
    log.info(
        "refit %s on %d rows: %s%.1f s on %d OpenMP thread(s)",
        best,
        len(y_train),
        "" if iterations is None else f"{iterations} iterations, ",
        time.perf_counter() - start,
        threads,
    )
    p_test = model.predict_proba(X.iloc[idx_test])[:, 1]
    scores = training.test_scores(y[idx_test], p_test, threshold)
    log.info(
        "chose %s, threshold %.4f (%s %.4f), test %s",
        best,
        threshold,
        tp.threshold_objective,
        objective_value,
        scores,
    )

    model_bytes = joblib_bytes(models.machine_independent(model))
    lineage = {
        "dataset": {
            "path": dp.path,
            "sha256": files.sha256_file(dp.path),
            "rows": len(frame),
            "columns": len(frame.columns),
        },
        "target": {
            "column": dp.target,
            "positive_label": str(dp.positive_label),
            "negative_label": data.negative_label(frame, dp),
            "positive_rate": round(float(y.mean()), 6),
        },
        "roles": roles.to_dict(),
        "dropped": [c for c in frame.columns if c != dp.target and c not in roles.features],
        "split": {
            "seed": tp.seed,
            "test_size": tp.test_size,
            "test_max_rows": tp.test_max_rows,
            "stratified": True,
            "train_rows": len(idx_train),
            "test_rows": len(idx_test),
        },
        # train.n_jobs is not recorded: results do not depend on it, and lineage.json must not either.
        "cv": {
            "folds": tp.cv_folds,
            "metric": tp.cv_metric,
            "seed": tp.seed,
            "screen": screen,
            "rows": len(y_train),
            "candidates": summary(results),
        },
        "chosen": {
            "family": best,
            "hyperparameters": hyperparameters,
            "resolved": models.resolved(best, tp, len(y_train)),
            "iterations": iterations,
            "stopped_early": stopped_early(best, tp, iterations, len(y_train)),
        },
        "selection": selection,
        "threshold": {
            "value": threshold,
            "rule": "p >= threshold",
            "objective": tp.threshold_objective,
            "objective_value_oof": round(objective_value, 6),
        },
        "test_scores": scores,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "versions": files.versions("scikit-learn", "numpy", "scipy", "pandas", "joblib"),
    }
    files.atomic_write_bytes(ARTIFACTS.model_joblib, model_bytes)
    files.atomic_write_text(ARTIFACTS.threshold, f"{threshold!r}\n")
    files.atomic_write_text(ARTIFACTS.test_csv, frame.iloc[idx_test].to_csv(index=False))
    files.atomic_write_text(
        ARTIFACTS.calibration_csv, frame.iloc[calibration_rows(idx_train, tp)].to_csv(index=False)
    )
    files.write_json(ARTIFACTS.lineage, lineage)
    files.atomic_write_text(ARTIFACTS.plot("roc.csv"), plots.roc_csv(y[idx_test], p_test, threshold))
    files.atomic_write_text(ARTIFACTS.plot("pr.csv"), plots.pr_csv(y[idx_test], p_test, threshold))


def held_out(rows: int, tp) -> float | int:
    """The test split: train.test_size of the rows, at most train.test_max_rows (the rest trains)."""
    if tp.test_max_rows is not None and tp.test_size * rows > tp.test_max_rows:
        return tp.test_max_rows
    return tp.test_size


def summary(results: dict[str, training.CVResult]) -> dict:
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


def stopped_early(family: str, tp, iterations: int | None, rows: int) -> bool | None:
    """Whether the refit stopped on its validation split before max_iter (None: no early stopping)."""
    if not models.resolved(family, tp, rows).get("early_stopping"):
        return None
    return iterations is not None and iterations < getattr(tp, family).max_iter


def calibration_rows(idx_train: list[int], tp) -> list[int]:
    """A seeded sample of training rows (never test rows), in file order, for the quantize stage:
    calibrating or searching INT8 on test rows would grade it on its own homework."""
    n = min(tp.calibration_rows, len(idx_train))
    chosen = np.random.default_rng(tp.seed).choice(np.asarray(idx_train), size=n, replace=False)
    return sorted(int(i) for i in chosen)


if __name__ == "__main__":
    run(main)

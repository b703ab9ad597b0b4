"""Stage 1, train: compare candidate pipelines by CV, tune the threshold, refit the best.

Reads params.yaml (data, train) and the CSV at data.path. Writes artifacts/best_model.joblib,
artifacts/threshold.txt, artifacts/lineage.json and artifacts/test.csv (the held-out rows, raw).
"""

from __future__ import annotations

import hashlib
import logging
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
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
        range(len(y)), test_size=tp.test_size, stratify=y, random_state=tp.seed
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

    results = {}
    for family in tp.candidates:
        pipe = models.build_pipeline(family, roles, tp)
        results[family] = training.cross_validate(
            family, pipe, X_train, y_train, tp.cv_folds, tp.cv_metric, tp.seed
        )
        log.info("%s: CV %s %.4f +/- %.4f", family, tp.cv_metric, results[family].mean, results[family].std)
    best, tree_count, oof, selection = sizes.select_model(
        results, lambda f: models.build_pipeline(f, roles, tp), X_train, y_train, tp
    )
    log.info(
        "selection: %s",
        "; ".join(selection["family"]["reasons"] + selection.get("tree_count", {}).get("reasons", [])),
    )
    threshold, objective_value = training.tune_threshold(y_train, oof, tp.threshold_objective)
    hyperparameters = getattr(tp, best).model_dump()
    final = models.build_pipeline(best, roles, tp)
    if tree_count is not None:
        hyperparameters["max_iter"] = tree_count
        final.set_params(model__max_iter=tree_count)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = final.fit(X_train, y_train)
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
            "stratified": True,
            "train_rows": len(idx_train),
            "test_rows": len(idx_test),
        },
        "cv": {
            "folds": tp.cv_folds,
            "metric": tp.cv_metric,
            "seed": tp.seed,
            "candidates": {
                f: {
                    "mean": round(r.mean, 6),
                    "std": round(r.std, 6),
                    "folds": [round(s, 6) for s in r.fold_scores],
                }
                for f, r in results.items()
            },
        },
        "chosen": {"family": best, "hyperparameters": hyperparameters},
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


def calibration_rows(idx_train: list[int], tp) -> list[int]:
    """A seeded sample of training rows (never test rows), in file order, for the quantize stage:
    calibrating or searching INT8 on test rows would grade it on its own homework."""
    n = min(tp.calibration_rows, len(idx_train))
    chosen = np.random.default_rng(tp.seed).choice(np.asarray(idx_train), size=n, replace=False)
    return sorted(int(i) for i in chosen)


if __name__ == "__main__":
    run(main)

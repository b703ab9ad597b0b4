"""Candidate pipelines: one ColumnTransformer + one estimator per model family.

Every piece here converts with skl2onnx. Trees get no scaler: float32 scaling moves rows across
split thresholds (a measured pitfall of skl2onnx), and trees do not need it.
"""

from __future__ import annotations

import importlib

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from onnxship.contract.spec import CATEGORICAL_MISSING
from onnxship.core.errors import UserError
from onnxship.core.params import TrainParams
from onnxship.train import boosters
from onnxship.train.table import Roles
from onnxship.train.transformers import RareCategoryGrouper

# What a missing categorical becomes inside the model; a category of its own.
MISSING_CATEGORY = "__missing__"

NEEDS_SCALING = {"logistic_regression": True, "mlp": True}
NEEDS_DENSE = {"hist_gradient_boosting": True, "lightgbm": True, "xgboost": True}
# How each family sees a categorical column. Trees split on one code per column as well as on its
# one-hot columns (a split on codes can group levels, so no accuracy is lost on the bundled data:
# docs/serving-speed.md), and the ONNX graph then computes 1 value per column instead of one per
# level: fewer ops at batch 1, narrower tree input at batch 1024. Linear models and MLPs need one-hot.
CATEGORICAL_ENCODING = {
    "logistic_regression": "onehot",
    "mlp": "onehot",
    "random_forest": "ordinal",
    "hist_gradient_boosting": "ordinal",
    "lightgbm": "ordinal",
    "xgboost": "ordinal",
}
# The code of a category never seen in training (only reachable for a column with nothing rare:
# otherwise the grouper has already made it "__other__"). skl2onnx's OrdinalEncoder converter sets
# the LabelEncoder default to this value, so both runtimes give the same code; -1 sorts below every
# real code, where HistGradientBoosting's binning and every tree threshold (>= 0.5) put it too.
UNKNOWN_CODE = -1


def custom_transformer(spec: str):
    """An instance of the class named ``module:Class`` (train.numeric_transformer)."""
    module_name, _, class_name = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise UserError(
            f"train.numeric_transformer '{spec}' cannot be loaded ({exc}); give 'module:Class' "
            "importable from the project root, e.g. plugins.clip:QuantileClipper"
        ) from None
    # Only a scikit-learn transformer class is called: 'os:system' or any other callable is refused
    # before anything is run with it.
    is_class = isinstance(found, type)
    if not (is_class and issubclass(found, BaseEstimator) and issubclass(found, TransformerMixin)):
        raise UserError(
            f"train.numeric_transformer '{spec}' is not a scikit-learn transformer class (a subclass of "
            "sklearn.base.BaseEstimator and TransformerMixin), e.g. plugins.clip:QuantileClipper"
        )
    try:
        return found()
    except TypeError as exc:
        raise UserError(
            f"train.numeric_transformer '{spec}' cannot be created without arguments ({exc}): give "
            "every parameter of its __init__ a default"
        ) from None


def preprocessor(
    roles: Roles, scale: bool, dense: bool, params: TrainParams, encoding: str = "onehot"
) -> ColumnTransformer:
    """Imputation (+ train.numeric_transformer and scaling) for numbers; for strings, missing ->
    "__missing__", levels beyond train.max_categories or seen fewer than train.min_frequency times
    -> "__other__", then ``encoding``: "onehot" (one 0/1 column per level) or "ordinal" (one code
    per column, ``UNKNOWN_CODE`` for an unseen level)."""
    numeric_steps = [("impute", SimpleImputer(strategy="median"))]
    if params.numeric_transformer:
        numeric_steps.append(("custom", custom_transformer(params.numeric_transformer)))
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    categorical = Pipeline(
        [
            (
                "impute",
                SimpleImputer(
                    missing_values=CATEGORICAL_MISSING,
                    strategy="constant",
                    fill_value=MISSING_CATEGORY,
                ),
            ),
            ("group_rare", RareCategoryGrouper(params.max_categories, params.min_frequency)),
            ("encode", categorical_encoder(encoding, dense)),
        ]
    )
    transformers = []
    if roles.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), roles.numeric))
    if roles.categorical:
        transformers.append(("categorical", categorical, roles.categorical))
    return ColumnTransformer(transformers, sparse_threshold=0.0 if dense else 0.3)


def categorical_encoder(encoding: str, dense: bool):
    if encoding == "onehot":
        return OneHotEncoder(handle_unknown="ignore", sparse_output=not dense)
    if encoding == "ordinal":
        return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=UNKNOWN_CODE)
    raise ValueError(f"unknown categorical encoding {encoding!r}")


def early_stopping(setting: str | bool, rows: int | None, min_rows: int) -> bool:
    """Resolve ``early_stopping: auto`` (on when the fit set has more than ``min_rows`` rows, the
    rule scikit-learn's HistGradientBoosting applies with 10,000) for a fit on ``rows`` rows; rows
    None (unknown): off."""
    if setting == "auto":
        return rows is not None and rows > min_rows
    return bool(setting)


def decide_early_stopping(params: TrainParams, rows: int, columns: int = 1) -> TrainParams:
    """``params`` with every ``early_stopping: auto`` decided for a training set of ``rows`` rows and
    ``columns`` feature columns, so that the screen, every CV fold and the refit use the same setting
    (a fold has fewer rows than the refit and could otherwise fall on the other side of
    early_stopping_min_rows). auto is on above early_stopping_min_rows rows, or above
    early_stopping_min_cells cells (rows x columns): a wide table's trees cost what its cells do, and
    the trees early stopping saves are a wide table's largest cost."""
    update = {}
    wide = rows * columns > params.early_stopping_min_cells
    for family in ("hist_gradient_boosting", "mlp"):
        hyper = getattr(params, family)
        stop = early_stopping(hyper.early_stopping, rows, params.early_stopping_min_rows)
        stop = stop or (hyper.early_stopping == "auto" and wide)
        update[family] = hyper.model_copy(update={"early_stopping": stop})
    return params.model_copy(update=update)


def resolved(family: str, params: TrainParams, rows: int | None) -> dict:
    """The cost knobs of ``family`` as a fit on ``rows`` rows applies them (lineage records these)."""
    if family in ("hist_gradient_boosting", "mlp"):
        hyper = getattr(params, family)
        stop = early_stopping(hyper.early_stopping, rows, params.early_stopping_min_rows)
        out = {"early_stopping": stop}
        if stop:
            out.update(validation_fraction=hyper.validation_fraction, n_iter_no_change=hyper.n_iter_no_change)
        return out
    if family == "random_forest":
        cap = params.random_forest.max_samples
        # An int above the fit set's size is an error in scikit-learn: no cap is needed then.
        return {"max_samples": cap if cap is not None and rows is not None and rows > cap else None}
    return {}


def estimator(family: str, params: TrainParams, rows: int | None = None):
    """The unfitted estimator of ``family``; ``rows`` (the fit set's size, if known) resolves the
    cost knobs: ``early_stopping: auto`` and the forest's ``max_samples`` cap."""
    seed = params.seed
    knobs = resolved(family, params, rows)
    if family == "logistic_regression":
        return LogisticRegression(**params.logistic_regression.model_dump(), random_state=seed)
    if family == "random_forest":
        hyper = params.random_forest.model_dump() | knobs
        # n_jobs=1: the fitted forest, and so the ONNX file, must not depend on thread timing.
        return RandomForestClassifier(**hyper, random_state=seed, n_jobs=1)
    if family == "hist_gradient_boosting":
        # The validation split for early stopping is drawn with random_state: deterministic.
        hyper = params.hist_gradient_boosting.model_dump() | knobs
        return HistGradientBoostingClassifier(**hyper, random_state=seed)
    if family == "mlp":
        hyper = params.mlp.model_dump() | knobs
        hyper["hidden_layer_sizes"] = tuple(hyper["hidden_layer_sizes"])
        return MLPClassifier(**hyper, random_state=seed)
    if family in boosters.FAMILIES:
        return boosters.estimator(family, getattr(params, family).model_dump(), seed)
    raise ValueError(f"unknown model family {family!r}")


def build_pipeline(family: str, roles: Roles, params: TrainParams, rows: int | None = None) -> Pipeline:
    """A fresh, unfitted pipeline for ``family``: preprocessing + estimator (``rows``: the size of
    the set it will be fitted on, which resolves the estimator's cost knobs)."""
    pre = preprocessor(
        roles,
        scale=NEEDS_SCALING.get(family, False),
        dense=NEEDS_DENSE.get(family, False),
        params=params,
        encoding=CATEGORICAL_ENCODING.get(family, "onehot"),
    )
    return Pipeline([("preprocess", pre), ("model", estimator(family, params, rows))])


def machine_independent(pipeline: Pipeline) -> Pipeline:
    """Drop fitted state that records this machine rather than the model, so the pickle (and its
    sha256, which lineage.json and onnx_metadata.json carry) is the same on every machine.

    HistGradientBoosting keeps the number of threads it binned the data with; predictions do not
    depend on it.
    """
    final = pipeline.steps[-1][1] if isinstance(pipeline, Pipeline) else pipeline
    bin_mapper = getattr(final, "_bin_mapper", None)
    if bin_mapper is not None:
        bin_mapper.n_threads = None
    return pipeline

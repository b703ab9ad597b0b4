"""The params.yaml schema, part 1: the shared types and the sections train reads (data, train).

Every knob has its default and a description (docs/params.md is generated from them by
tools/params_doc.py). Two tiers: params.yaml shows the knobs a user changes; every other knob keeps
the default given here and may still be set in params.yaml under its own section. The later stages'
sections, the root model (rules that span sections) and loading are in onnxship/core/params.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Family = Literal[
    "logistic_regression", "random_forest", "hist_gradient_boosting", "mlp", "lightgbm", "xgboost"
]
# A candidate of your own: "module:function", the function building an unfitted classifier
# (onnxship/train/factories.py imports and checks it when train starts).
FACTORY_SPEC = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
EarlyStopping = Literal["auto"] | bool


class Section(BaseModel):
    """A section of params.yaml: an unknown key is refused (with a did-you-mean), values are not
    coerced (strict: "5" is not a number, 1 is not true), and a number is finite: YAML's .inf and
    .nan would pass a bound such as gt=0 (or fail it silently) and reach the estimators."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class DataParams(Section):
    """`data`: the CSV, its target and which columns are features (read by train)."""

    path: str = Field(
        description="The training CSV (UTF-8, comma-separated, a header row), relative to the project root."
    )
    target: str = Field(description="The column to predict, as named in the CSV header (case-sensitive).")
    positive_label: str | int = Field(
        description='The target value that means positive, as written in the CSV. Quote words ("yes"): '
        "an unquoted true/false is a YAML boolean and is refused."
    )
    numeric: list[str] | None = Field(
        None,
        description="Columns to use as numbers; null infers them (a column is numeric when at least 95 % "
        "of its present cells are numbers). Set it when inference gets a column wrong, or to keep an "
        "ID-like integer column (a row number: docs/data.md) as a feature on purpose.",
    )
    categorical: list[str] | None = Field(
        None,
        description="Columns to use as categories; null infers them (whatever is not numeric or ID-like). "
        "List an ID-like column here to keep it. With both lists given they are the whole feature set.",
    )
    drop: list[str] = Field([], description="Columns never used as features: IDs, leaks, free text.")
    # Bounds on what the data may be: a 50 MB cell or a 100,000-column file is a mistake (a free-text
    # field, a transposed export) that would otherwise bloat model.onnx and the JSON contract.
    max_columns: PositiveInt = Field(
        10_000,
        description="A CSV with more columns is refused before any work (a transposed or wrong export). "
        "Raise it for a genuinely wide table.",
    )
    max_category_chars: PositiveInt = Field(
        1_000,
        description="A categorical value longer than this many characters is refused (free text, a broken "
        "quote): every category is written into model.onnx and onnx_features.json. List such a column "
        "under data.drop, or raise the bound.",
    )

    @field_validator("positive_label", mode="before")
    @classmethod
    def _not_a_yaml_boolean(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError(
                f"the unquoted YAML boolean {str(value).lower()} is not a label: quote the target value "
                f'as written in the CSV, e.g. positive_label: "{str(value).lower()}"'
            )
        return value


class LogisticRegressionParams(Section):
    """`train.logistic_regression`: scikit-learn LogisticRegression after scaling and one-hot encoding."""

    C: PositiveFloat = Field(1.0, description="Inverse L2 regularization strength; smaller is simpler.")
    max_iter: PositiveInt = Field(
        1000, description="Solver iterations at most; raise it if scikit-learn warns it did not converge."
    )
    class_weight: Literal["balanced"] | None = Field(
        None, description="balanced: weight classes inversely to their frequency (rare positives)."
    )


class RandomForestParams(Section):
    """`train.random_forest`: scikit-learn RandomForestClassifier on ordinal category codes."""

    n_estimators: PositiveInt = Field(
        200, description="Trees. More trees cost serving time and model.onnx size roughly linearly."
    )
    max_depth: PositiveInt | None = Field(None, description="Depth of each tree at most; null: unlimited.")
    min_samples_leaf: PositiveInt = Field(
        1, description="Training rows per leaf at least; larger is smoother."
    )
    class_weight: Literal["balanced", "balanced_subsample"] | None = Field(
        None, description="Reweight classes inversely to their frequency (per tree with balanced_subsample)."
    )
    max_samples: PositiveInt | None = Field(
        20000,
        description="Bootstrap rows drawn for each tree, at most; null: as many as the fit set has. Caps "
        "fitting time and tree size on large files.",
    )


class HistGradientBoostingParams(Section):
    """`train.hist_gradient_boosting`: scikit-learn HistGradientBoostingClassifier on ordinal codes."""

    learning_rate: PositiveFloat = Field(0.1, description="Shrinkage of each tree's contribution.")
    max_iter: PositiveInt = Field(
        200,
        description="Boosting rounds (trees) at most; always one of the tree counts the selection scores "
        "(train.selection.tree_counts).",
    )
    max_leaf_nodes: Annotated[int, Field(ge=2)] = Field(31, description="Leaves per tree at most.")
    min_samples_leaf: PositiveInt = Field(20, description="Training rows per leaf at least.")
    l2_regularization: Annotated[float, Field(ge=0)] = Field(0.0, description="L2 penalty on leaf values.")
    class_weight: Literal["balanced"] | None = Field(
        None, description="balanced: weight classes inversely to their frequency."
    )
    early_stopping: EarlyStopping = Field(
        "auto",
        description="Stop adding trees when the loss on a validation share stops improving. auto: on "
        "above train.early_stopping_min_rows fit rows or train.early_stopping_min_cells cells.",
    )
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.1,
        description="Share of the fit rows held out (stratified, drawn with train.seed) for early stopping.",
    )
    n_iter_no_change: PositiveInt = Field(
        10, description="Early stopping waits this many trees without improvement before it stops."
    )


class MLPParams(Section):
    """`train.mlp`: scikit-learn MLPClassifier after scaling and one-hot encoding."""

    hidden_layer_sizes: list[PositiveInt] = Field(
        [100],
        description="Units per hidden layer, e.g. [64, 32]; fewer units serve faster and quantize smaller.",
    )
    alpha: Annotated[float, Field(ge=0)] = Field(1e-4, description="L2 penalty on the weights.")
    learning_rate_init: PositiveFloat = Field(1e-3, description="Adam's initial learning rate.")
    max_iter: PositiveInt = Field(300, description="Epochs at most.")
    early_stopping: EarlyStopping = Field(
        "auto",
        description="Stop when accuracy on a validation share stops improving and keep the best epoch's "
        "weights. auto: on above train.early_stopping_min_rows fit rows or "
        "train.early_stopping_min_cells cells.",
    )
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.1, description="Share of the fit rows held out for early stopping."
    )
    n_iter_no_change: PositiveInt = Field(
        10, description="Early stopping waits this many epochs without improvement before it stops."
    )


class LightGBMParams(Section):
    """`train.lightgbm`: LightGBM's LGBMClassifier on ordinal category codes (opt-in: list lightgbm in
    train.candidates). Fitted on one thread with deterministic=True and force_row_wise=True."""

    n_estimators: PositiveInt = Field(
        100,
        description="Boosting rounds (trees) at most, LightGBM's default. No early stopping; the "
        "selection also scores the smaller train.selection.tree_counts.",
    )
    learning_rate: PositiveFloat = Field(0.1, description="Shrinkage of each tree's contribution.")
    num_leaves: Annotated[int, Field(ge=2)] = Field(31, description="Leaves per tree at most.")
    min_child_samples: PositiveInt = Field(20, description="Training rows per leaf at least.")
    reg_lambda: Annotated[float, Field(ge=0)] = Field(0.0, description="L2 penalty on leaf values.")
    class_weight: Literal["balanced"] | None = Field(
        None, description="balanced: weight classes inversely to their frequency."
    )


class XGBoostParams(Section):
    """`train.xgboost`: XGBoost's XGBClassifier (tree_method hist) on ordinal category codes (opt-in:
    list xgboost in train.candidates). Fitted on one thread."""

    n_estimators: PositiveInt = Field(
        100,
        description="Boosting rounds (trees) at most, XGBoost's default. No early stopping; the "
        "selection also scores the smaller train.selection.tree_counts.",
    )
    learning_rate: PositiveFloat = Field(0.3, description="Shrinkage of each tree's contribution (eta).")
    max_depth: PositiveInt = Field(6, description="Depth of each tree at most.")
    min_child_weight: Annotated[float, Field(ge=0)] = Field(
        1.0, description="Hessian sum per leaf at least; larger is smoother."
    )
    reg_lambda: Annotated[float, Field(ge=0)] = Field(1.0, description="L2 penalty on leaf values.")
    scale_pos_weight: PositiveFloat = Field(
        1.0, description="Weight of positive rows; negatives/positives balances rare positives."
    )


class ScreenParams(Section):
    """`train.screen`: on large files, a cheap first round that drops the weakest candidates."""

    rows: PositiveInt | None = Field(
        20000,
        description="With more training rows than this, every candidate is cross-validated on a stratified "
        "sample of this many rows first; null: no screen. Lower it to save time on large files (at "
        "least 2 x train.cv_folds: each class needs a row in every fold).",
    )
    keep: PositiveInt = Field(
        2,
        description="Candidates the screen keeps for CV on all training rows (the best by mean CV score). "
        "With no more candidates than this, there is no screen.",
    )


class SelectionParams(Section):
    """`train.selection`: which candidate ships (onnxship/train/select.py) - the cheapest to serve
    among those within the CV noise of the best."""

    prefer_cheaper: bool = Field(
        True,
        description="true: ship the cheapest model to serve (tree nodes, weights) among those within the CV "
        "noise of the best; false: the highest mean CV score, whatever it costs.",
    )
    noise_sigmas: Annotated[float, Field(ge=0)] = Field(
        1.0,
        description="Within the noise: the fold-paired CV loss against the best is at most this many "
        "standard errors. 0 keeps only the best score.",
    )
    max_score_loss: Annotated[float, Field(ge=0)] = Field(
        0.005, description="CV score (in train.cv_metric units) never given up for a cheaper model, at most."
    )
    tree_counts: list[PositiveInt] = Field(
        [25, 50, 75, 100, 150, 200],
        description="Boosting sizes scored by staged prediction (one fit per fold); counts above the "
        "family's max_iter (HGB) or n_estimators (LightGBM, XGBoost) are skipped, and that is always scored.",
    )


class TrainParams(Section):
    """`train`: the split, the candidates, cross-validation, the threshold and the refit."""

    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = Field(
        42, description="Seeds the split, the folds, the samples and every model (numpy's range)."
    )
    test_size: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.2,
        description="Share of the rows held out as the test split (test scores, parity, benchmark); "
        "stratified.",
    )
    test_max_rows: PositiveInt | None = Field(
        100000,
        description="Held-out rows at most (null: no cap); beyond it the rows train. 100,000 rows measure "
        "AP to about +/- 0.01 at 5 % positives, more only cost time.",
    )
    n_jobs: PositiveInt = Field(
        2,
        description="Worker processes for the CV folds (all families' folds in one pool), each on one "
        "OpenMP/BLAS thread: set it to the cores you can use. Results do not depend on it, so "
        "lineage.json does not record it.",
    )
    refit_threads: PositiveInt = Field(
        1,
        description="OpenMP threads of the final refit, at most the cores (BLAS: 1). 2 halves HGB's refit "
        "on a quiet 2-core machine; on loaded cores, threads wait on each other. Same model either way.",
    )
    early_stopping_min_rows: PositiveInt = Field(
        10000, description="early_stopping: auto turns early stopping on above this many fit rows."
    )
    early_stopping_min_cells: PositiveInt = Field(
        2_000_000,
        description="... or above this many training cells (rows x feature columns): on a wide table the "
        "trees and epochs early stopping saves are most of the training time.",
    )
    screen: ScreenParams = Field(ScreenParams(), description="The screen on large files.")
    cv_folds: Annotated[int, Field(ge=2)] = Field(
        5, description="Stratified CV folds that compare the candidates and tune the threshold."
    )
    cv_metric: Literal["average_precision", "roc_auc", "neg_log_loss", "f1", "balanced_accuracy"] = Field(
        "average_precision",
        description="The score that compares candidates. average_precision suits rare positives.",
    )
    threshold_objective: Literal["f1", "balanced_accuracy", "youden_j"] = Field(
        "f1",
        description="What the decision threshold maximizes on out-of-fold probabilities; the rule "
        "everywhere is p >= threshold.",
    )
    max_categories: PositiveInt | None = Field(
        100,
        description="Per categorical column, keep the most frequent N levels (null: all); the rest become "
        '"__other__". Bounds model size on high-cardinality columns.',
    )
    min_frequency: PositiveInt = Field(
        1, description='A level seen fewer times than this in training also becomes "__other__".'
    )
    calibration_rows: PositiveInt = Field(
        2000,
        description="Training rows (a seeded sample) written to artifacts/calibration.csv: quantize "
        "calibrates and searches INT8 on them, never on test rows.",
    )
    numeric_transformer: Annotated[str, Field(pattern=r"^[\w.]+:\w+$")] | None = Field(
        None,
        description='Your own scikit-learn transformer ("module:Class", e.g. plugins.clip:Clipper) applied '
        "to numeric columns after imputation; register its converter under export.converter_modules.",
    )
    candidates: Annotated[list[str], Field(min_length=1)] = Field(
        description=f"The model families compared by CV ({', '.join(get_args(Family))}), each at most once; "
        "fewer candidates train faster; lightgbm and xgboost are opt-in (not in the default list). "
        'An entry "module:function" (e.g. plugins.my_models:build) is a candidate of your own: '
        "function(numeric=..., categorical=...) returns an unfitted classifier (docs/models.md). "
        "Ignored when train.fitted_model is set."
    )
    fitted_model: Annotated[str, Field(min_length=1)] | None = Field(
        None,
        description="A fitted classifier you already have (a joblib file, e.g. models/model.joblib, "
        "relative to the project root) to ship instead of training: no CV, no selection; the threshold "
        "is tuned on the test split or taken from train.threshold. A joblib file is a pickle: load only "
        "your own (docs/models.md).",
    )
    threshold: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None,
        description="The decision threshold (p >= threshold), taken as given instead of tuned (null: "
        "tuned by train.threshold_objective).",
    )
    logistic_regression: LogisticRegressionParams = Field(
        LogisticRegressionParams(), description="Hyperparameters of logistic_regression."
    )
    random_forest: RandomForestParams = Field(
        RandomForestParams(), description="Hyperparameters of random_forest."
    )
    hist_gradient_boosting: HistGradientBoostingParams = Field(
        HistGradientBoostingParams(), description="Hyperparameters of hist_gradient_boosting."
    )
    mlp: MLPParams = Field(MLPParams(), description="Hyperparameters of mlp.")
    lightgbm: LightGBMParams = Field(LightGBMParams(), description="Hyperparameters of lightgbm.")
    xgboost: XGBoostParams = Field(XGBoostParams(), description="Hyperparameters of xgboost.")
    selection: SelectionParams = Field(SelectionParams(), description="Which candidate ships.")

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, candidates: list[str]) -> list[str]:
        for entry in candidates:
            if entry not in get_args(Family) and not FACTORY_SPEC.fullmatch(entry):
                families = ", ".join(get_args(Family))
                raise ValueError(
                    f"train.candidates entry {entry!r} is neither a model family ({families}) "
                    "nor 'module:function' naming your own (e.g. plugins.my_models:build)"
                )
        return candidates

    @model_validator(mode="after")
    def _consistent(self) -> TrainParams:
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError(f"train.candidates lists a family twice: {self.candidates}")
        rows, folds = self.screen.rows, self.cv_folds
        if rows is not None and rows < 2 * folds:
            # The screen cross-validates a stratified sample: each class needs a row in every fold.
            raise ValueError(
                f"train.screen.rows {rows} is below 2 x train.cv_folds ({2 * folds}): each class of the "
                "screen's sample needs a row in every fold; raise train.screen.rows, or set it to null"
            )
        return self

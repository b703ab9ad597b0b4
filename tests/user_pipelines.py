"""A zoo of pipelines as users write them, for tests/test_user_pipelines.py.

Each factory is what a ``train.candidates`` entry ``module:function`` names: called as
``f(numeric=[...], categorical=[...])``, it returns an unfitted classifier for the model input frame
(float32 numbers with NaN for missing, strings with "" for missing). ``SUPPORTED`` must ship with
0 flipped decisions; ``UNSUPPORTED`` must be refused with one line naming the step (its path in
``step``). Models are kept small so the whole zoo fits and scores in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, make_column_selector, make_column_transformer
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier


def frame(numeric, categorical, numbers=(), encoder=None, dense=False) -> ColumnTransformer:
    """The usual front: median imputation (+ ``numbers`` steps) for numbers; "" -> "missing",
    then ``encoder`` (OneHotEncoder ignoring unknown levels by default) for strings."""
    numeric_steps = Pipeline([("impute", SimpleImputer(strategy="median")), *numbers])
    categorical_steps = Pipeline(
        [
            ("impute", SimpleImputer(missing_values="", strategy="constant", fill_value="missing")),
            ("encode", encoder or OneHotEncoder(handle_unknown="ignore", sparse_output=not dense)),
        ]
    )
    return ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)],
        sparse_threshold=0.0 if dense else 0.3,
    )


def model(pre: ColumnTransformer, classifier) -> Pipeline:
    return Pipeline([("preprocess", pre), ("model", classifier)])


def logistic() -> LogisticRegression:
    return LogisticRegression(max_iter=2000)


# --- linear, kernel, neighbours ----------------------------------------------------------------


def standard_logistic(numeric, categorical):
    return model(frame(numeric, categorical, [("scale", StandardScaler())]), logistic())


def selector_logistic(numeric, categorical):
    # Columns chosen by dtype, with make_pipeline/make_column_transformer (the factory's lists unused).
    pre = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), make_column_selector(dtype_include=np.number)),
        (OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_include=object)),
    )
    return make_pipeline(pre, logistic())


def robust_sgd(numeric, categorical):
    sgd = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0)
    return model(frame(numeric, categorical, [("scale", RobustScaler())]), sgd)


def minmax_svc(numeric, categorical):
    svc = SVC(probability=True, C=1.0, random_state=0)
    return model(frame(numeric, categorical, [("scale", MinMaxScaler())]), svc)


def kbins_logistic(numeric, categorical):
    bins = KBinsDiscretizer(n_bins=6, encode="onehot-dense", strategy="quantile", quantile_method="linear")
    return model(frame(numeric, categorical, [("bins", bins)]), logistic())


def poly_logistic(numeric, categorical):
    steps = [("scale", StandardScaler()), ("poly", PolynomialFeatures(degree=2, include_bias=False))]
    return model(frame(numeric, categorical, steps), LogisticRegression(C=0.05, max_iter=500))


def pca_knn(numeric, categorical):
    steps = [("scale", StandardScaler()), ("pca", PCA(n_components=8, random_state=0))]
    return model(frame(numeric, categorical, steps), KNeighborsClassifier(n_neighbors=15))


def log1p_logistic(numeric, categorical):
    steps = [("log", FunctionTransformer(np.log1p, inverse_func=np.expm1)), ("scale", StandardScaler())]
    return model(frame(numeric, categorical, steps), logistic())


def infrequent_logistic(numeric, categorical):
    encoder = OneHotEncoder(max_categories=8, handle_unknown="infrequent_if_exist", sparse_output=False)
    return model(frame(numeric, categorical, [("scale", StandardScaler())], encoder), logistic())


def most_frequent_logistic(numeric, categorical):
    # Categories imputed as numbers are: SimpleImputer's default missing_values=np.nan on strings.
    pre = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                categorical,
            ),
        ]
    )
    return model(pre, logistic())


def target_encoder_logistic(numeric, categorical):
    pre = frame(
        numeric, categorical, [("scale", StandardScaler())], TargetEncoder(random_state=0), dense=True
    )
    return model(pre, logistic())


def discriminant(numeric, categorical):
    # skl2onnx alone gives expit(2d) for scikit-learn's expit(d): 0.15 off here (discriminant.py).
    return model(
        frame(numeric, categorical, [("scale", StandardScaler())], dense=True), LinearDiscriminantAnalysis()
    )


def calibrated_linear_svc(numeric, categorical):
    svc = CalibratedClassifierCV(LinearSVC(C=0.1), method="sigmoid", cv=3)
    return model(frame(numeric, categorical, [("scale", StandardScaler())]), svc)


def calibrated_svc(numeric, categorical):
    # What scikit-learn 1.9 recommends instead of the deprecated SVC(probability=True).
    svc = CalibratedClassifierCV(SVC(C=1.0), ensemble=False)
    return model(frame(numeric, categorical, [("scale", MinMaxScaler())]), svc)


# --- trees and boosting (no scaler in front of trees: float32 scaling moves rows across splits) --


def decision_tree(numeric, categorical):
    return model(frame(numeric, categorical), DecisionTreeClassifier(max_depth=6, random_state=0))


def isotonic_tree(numeric, categorical):
    # skl2onnx alone maps a score to the nearest threshold's value: 0.054 off here (isotonic.py).
    tree = CalibratedClassifierCV(DecisionTreeClassifier(max_depth=8, random_state=0), method="isotonic")
    return model(frame(numeric, categorical), tree)


def extra_trees(numeric, categorical):
    trees = ExtraTreesClassifier(n_estimators=40, max_depth=10, random_state=0, n_jobs=1)
    return model(frame(numeric, categorical), trees)


def random_forest(numeric, categorical):
    forest = RandomForestClassifier(n_estimators=40, min_samples_leaf=3, random_state=0, n_jobs=1)
    return model(frame(numeric, categorical), forest)


def scaled_forest(numeric, categorical):
    # A scaler in front of trees, as users often write it (export.exact_scaling keeps it exact).
    forest = RandomForestClassifier(n_estimators=40, min_samples_leaf=3, random_state=0, n_jobs=1)
    return model(frame(numeric, categorical, [("scale", StandardScaler())]), forest)


def scaled_boosting(numeric, categorical):
    boosting = HistGradientBoostingClassifier(max_iter=40, random_state=0)
    return model(frame(numeric, categorical, [("scale", StandardScaler())], dense=True), boosting)


def robust_forest(numeric, categorical):
    forest = RandomForestClassifier(n_estimators=40, min_samples_leaf=3, random_state=0, n_jobs=1)
    return model(frame(numeric, categorical, [("scale", RobustScaler())]), forest)


def infrequent_forest(numeric, categorical):
    encoder = OneHotEncoder(
        min_frequency=80, handle_unknown="infrequent_if_exist", drop="if_binary", sparse_output=False
    )
    forest = RandomForestClassifier(n_estimators=40, min_samples_leaf=3, random_state=0, n_jobs=1)
    return model(frame(numeric, categorical, encoder=encoder), forest)


def ordinal_infrequent_forest(numeric, categorical):
    codes = OrdinalEncoder(max_categories=8, handle_unknown="use_encoded_value", unknown_value=-1)
    forest = RandomForestClassifier(n_estimators=30, min_samples_leaf=3, random_state=0, n_jobs=1)
    return model(frame(numeric, categorical, encoder=codes, dense=True), forest)


def gradient_boosting(numeric, categorical):
    boosting = GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0)
    return model(frame(numeric, categorical), boosting)


def hist_gradient_boosting(numeric, categorical):
    boosting = HistGradientBoostingClassifier(max_iter=40, random_state=0)
    return model(frame(numeric, categorical, dense=True), boosting)


# --- ensembles ------------------------------------------------------------------------------------


def soft_voting(numeric, categorical):
    voting = VotingClassifier(
        [
            ("linear", make_pipeline(StandardScaler(), logistic())),
            ("forest", RandomForestClassifier(n_estimators=30, min_samples_leaf=3, random_state=0, n_jobs=1)),
            ("boosting", GradientBoostingClassifier(n_estimators=30, random_state=0)),
        ],
        voting="soft",  # flatten_transform=True, the default, which skl2onnx alone refuses
    )
    return model(frame(numeric, categorical, dense=True), voting)


def stacking(numeric, categorical):
    stack = StackingClassifier(
        [
            ("linear", make_pipeline(StandardScaler(), logistic())),
            ("tree", DecisionTreeClassifier(max_depth=5, random_state=0)),
        ],
        final_estimator=LogisticRegression(),
        cv=3,
    )
    return model(frame(numeric, categorical, dense=True), stack)


# --- LightGBM / XGBoost ----------------------------------------------------------------------------
# onnxmltools' converters, registered by onnxship.convert.boosters, behind a user's own front.


def lightgbm_onehot(numeric, categorical):
    from lightgbm import LGBMClassifier

    booster = LGBMClassifier(n_estimators=60, num_leaves=15, random_state=0, n_jobs=1, verbose=-1)
    return model(frame(numeric, categorical, dense=True), booster)


def xgboost_ordinal(numeric, categorical):
    from xgboost import XGBClassifier

    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    booster = XGBClassifier(n_estimators=60, max_depth=4, random_state=0, n_jobs=1)
    return model(frame(numeric, categorical, encoder=codes, dense=True), booster)


def xgboost_infrequent(numeric, categorical):
    from xgboost import XGBClassifier

    encoder = OneHotEncoder(min_frequency=50, handle_unknown="infrequent_if_exist", sparse_output=False)
    booster = XGBClassifier(n_estimators=40, max_depth=3, random_state=0, n_jobs=1)
    return model(
        frame(numeric, categorical, [("scale", StandardScaler())], encoder=encoder, dense=True), booster
    )


# --- refused: each must fail with one line naming its step ------------------------------------------


def spline_logistic(numeric, categorical):
    steps = [("spline", SplineTransformer(n_knots=4)), ("scale", StandardScaler())]
    return model(frame(numeric, categorical, steps), logistic())


def lambda_logistic(numeric, categorical):
    clip_log = FunctionTransformer(lambda x: np.log1p(np.clip(x, 0, None)))
    return model(frame(numeric, categorical, [("log", clip_log), ("scale", StandardScaler())]), logistic())


def nystroem_logistic(numeric, categorical):
    steps = [("scale", StandardScaler()), ("kernel", Nystroem(n_components=50, random_state=0))]
    return model(frame(numeric, categorical, steps), logistic())


def native_categorical_boosting(numeric, categorical):
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    pre = frame(numeric, categorical, encoder=codes, dense=True)
    first_code = len(numeric)
    categorical_columns = list(range(first_code, first_code + len(categorical)))
    boosting = HistGradientBoostingClassifier(max_iter=20, categorical_features=categorical_columns)
    return model(pre, boosting)


def distance_knn(numeric, categorical):
    steps = [("scale", StandardScaler())]
    return model(frame(numeric, categorical, steps), KNeighborsClassifier(n_neighbors=7, weights="distance"))


def stacked_linear_svc(numeric, categorical):
    stack = StackingClassifier([("svc", LinearSVC()), ("tree", DecisionTreeClassifier(max_depth=4))], cv=3)
    return model(frame(numeric, categorical, [("scale", StandardScaler())], dense=True), stack)


@dataclass(frozen=True)
class Entry:
    """A zoo pipeline: its factory and the rows it is fitted on (the SVC on a sample)."""

    factory: Callable
    fit_rows: int = 3000
    step: str | None = None  # for a refused one: the step the error must name
    way_out: str = "docs/data.md"  # and what the error must point to


SUPPORTED = {
    "standard_logistic": Entry(standard_logistic),
    "selector_logistic": Entry(selector_logistic),
    "robust_sgd": Entry(robust_sgd),
    "minmax_svc": Entry(minmax_svc, fit_rows=800),
    "kbins_logistic": Entry(kbins_logistic),
    "poly_logistic": Entry(poly_logistic),
    "pca_knn": Entry(pca_knn, fit_rows=1500),
    "log1p_logistic": Entry(log1p_logistic),
    "infrequent_logistic": Entry(infrequent_logistic),
    "most_frequent_logistic": Entry(most_frequent_logistic),
    "target_encoder_logistic": Entry(target_encoder_logistic),
    "discriminant": Entry(discriminant),
    "calibrated_linear_svc": Entry(calibrated_linear_svc),
    "calibrated_svc": Entry(calibrated_svc, fit_rows=800),
    "decision_tree": Entry(decision_tree),
    "isotonic_tree": Entry(isotonic_tree),
    "extra_trees": Entry(extra_trees),
    "random_forest": Entry(random_forest),
    "scaled_forest": Entry(scaled_forest),
    "scaled_boosting": Entry(scaled_boosting),
    "robust_forest": Entry(robust_forest),
    "infrequent_forest": Entry(infrequent_forest),
    "ordinal_infrequent_forest": Entry(ordinal_infrequent_forest),
    "gradient_boosting": Entry(gradient_boosting),
    "hist_gradient_boosting": Entry(hist_gradient_boosting),
    "soft_voting": Entry(soft_voting),
    "stacking": Entry(stacking),
    "lightgbm_onehot": Entry(lightgbm_onehot),
    "xgboost_ordinal": Entry(xgboost_ordinal),
    "xgboost_infrequent": Entry(xgboost_infrequent),
}
UNSUPPORTED = {
    "spline_logistic": Entry(spline_logistic, step="preprocess/numeric/spline"),
    "lambda_logistic": Entry(lambda_logistic, step="preprocess/numeric/log"),
    "nystroem_logistic": Entry(nystroem_logistic, step="preprocess/numeric/kernel"),
    "distance_knn": Entry(distance_knn, fit_rows=1000, step="model", way_out="weights='uniform'"),
    "stacked_linear_svc": Entry(stacked_linear_svc, fit_rows=1000, step="model", way_out="predict_proba"),
    "native_categorical_boosting": Entry(
        native_categorical_boosting, fit_rows=1000, step="model", way_out="leave categorical_features unset"
    ),
}

"""Worked example of a candidate of your own: a function that builds an unfitted classifier.

Name it in params.yaml next to the built-in families, as "module:function":

    train:
      candidates: [logistic_regression, plugins.my_models:build]

train calls ``build(numeric=[...], categorical=[...])`` with the column lists of the roles it decided
(data.numeric / data.categorical, or inferred). The classifier receives the model input frame: float32
numbers with NaN for missing, strings with "" for missing, one column per feature. It is then
cross-validated, selected, given a threshold, refitted, exported, quantized, gated and benchmarked
like a built-in family (docs/models.md). Every step here has a converter in skl2onnx; a step of your
own needs one too (plugins/clip.py shows how).

This module is a dvc.yaml dep of the stages that import it or unpickle a model built by it (the
whole plugins/ folder is), so editing it re-runs train and what follows.
"""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, RobustScaler


def build(numeric: list[str], categorical: list[str]) -> Pipeline:
    """Median-imputed, robust-scaled numbers and one-hot categories (missing "" is a level of its
    own, an unseen level all zeros) in front of a logistic regression."""
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", RobustScaler())])
    # handle_unknown="ignore": a category never seen in training scores as all-zero one-hot, in
    # scikit-learn and in ONNX alike. sparse_output=False keeps the conversion dense.
    categories = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    transformers = []
    if numeric:
        transformers.append(("numeric", numbers, numeric))
    if categorical:
        transformers.append(("categorical", categories, categorical))
    return Pipeline(
        [
            ("preprocess", ColumnTransformer(transformers)),
            ("model", LogisticRegression(C=0.5, max_iter=2000)),
        ]
    )

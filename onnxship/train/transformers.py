"""Our own scikit-learn transformers, each with an ONNX converter in onnxship.converters."""

from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

OTHER_CATEGORY = "__other__"


class RareCategoryGrouper(TransformerMixin, BaseEstimator):
    """Replace rare categories of each string column by ``"__other__"``.

    Keeps, per column, the categories seen at least ``min_frequency`` times, at most
    ``max_categories`` of them (most frequent first). Everything else, including categories never
    seen in training, becomes ``"__other__"``. It caps one-hot width for columns with thousands of
    levels (IDs, ZIP codes); scikit-learn's own OneHotEncoder(max_categories=...) does the same job
    but skl2onnx cannot convert it.
    """

    def __init__(self, max_categories: int | None = 100, min_frequency: int = 1):
        self.max_categories = max_categories
        self.min_frequency = min_frequency

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=object)
        self.kept_ = []
        self.grouped_ = []
        for column in X.T:
            counts = Counter(column.tolist())
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
            kept = [value for value, n in ranked if n >= self.min_frequency][: self.max_categories]
            self.kept_.append(sorted(str(v) for v in kept))
            self.grouped_.append(len(counts) - len(kept))
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=object)
        out = X.copy()
        for j, kept in enumerate(self.kept_):
            # A column that had nothing rare passes through, as in the ONNX graph: an unseen value
            # then reaches the one-hot encoder, which ignores it (all zeros) either way.
            if self.grouped_[j]:
                out[~np.isin(X[:, j].astype(str), kept), j] = OTHER_CATEGORY
        return out

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features if input_features is not None else [], dtype=object)

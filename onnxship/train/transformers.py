"""Our own scikit-learn transformers, each with an ONNX converter in onnxship.converters."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
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


class CategoryCodes(TransformerMixin, BaseEstimator):
    """String columns -> float codes through one lookup table per column.

    Not trained: ``from_steps`` builds it from a fitted categorical chain (missing-value imputer,
    RareCategoryGrouper, OrdinalEncoder), by running that chain on every string it knows and on one
    string it cannot know. Any other string takes the chain's path for unseen strings, so the table
    gives exactly the chain's codes for every input. The export stage converts this table instead of
    the chain: one ONNX LabelEncoder per column instead of about eight ops (docs/serving-speed.md).
    """

    def __init__(self, tables: list[tuple[list[str], list[float], float]] | None = None):
        self.tables = tables

    @classmethod
    def from_steps(cls, chain, columns: list[str]) -> CategoryCodes:
        """The lookup tables of ``chain``, a fitted transformer of the string ``columns``."""
        n_columns = len(columns)
        known: list[set[str]] = [set() for _ in range(n_columns)]
        for step in _leaf_steps(chain):
            for j, values in enumerate(getattr(step, "categories_", None) or getattr(step, "kept_", [])):
                known[j].update(str(v) for v in values)
            if hasattr(step, "fill_value") and isinstance(step.fill_value, str):
                for j in range(n_columns):
                    known[j].update({step.fill_value, str(step.missing_values)})
        for j in range(n_columns):
            known[j].add(OTHER_CATEGORY)
        # A string longer than any key and containing a NUL byte: no training value can be it.
        unseen = "\x00" + "?" * (1 + max(len(k) for keys in known for k in keys))
        tables = []
        for j, keys in enumerate(known):
            ordered = sorted(keys)
            probe = np.full((len(ordered) + 1, n_columns), unseen, dtype=object)
            probe[:-1, j] = ordered
            codes = np.asarray(chain.transform(pd.DataFrame(probe, columns=columns)), dtype=np.float64)[:, j]
            tables.append((ordered, [float(c) for c in codes[:-1]], float(codes[-1])))
        return cls(tables)

    def fit(self, X, y=None):
        self.n_features_in_ = len(self.tables)
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=object)
        out = np.empty(X.shape, dtype=np.float64)
        for j, (keys, codes, default) in enumerate(self.tables):
            lookup = dict(zip(keys, codes, strict=True))
            out[:, j] = [lookup.get(str(v), default) for v in X[:, j]]
        return out


def _leaf_steps(chain) -> list:
    steps = getattr(chain, "steps", None)
    return [s for _, step in steps for s in _leaf_steps(step)] if steps else [chain]

"""Worked example of the custom-converter hook: a transformer of our own, and its ONNX converter.

QuantileClipper clips each numeric column to the [low, high] quantiles seen in training, so that a
far-out value cannot dominate a linear model or an MLP. skl2onnx does not know it, so this module
registers a shape calculator and a converter (Max then Min against per-column bounds).

Use it from params.yaml:

    train:
      numeric_transformer: plugins.clip:QuantileClipper   # added after imputation
    export:
      converter_modules: [plugins.clip]                   # registers the converter below

and add plugins/clip.py to the deps of the train and export stages in dvc.yaml.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import FloatTensorType
from sklearn.base import BaseEstimator, TransformerMixin


class QuantileClipper(TransformerMixin, BaseEstimator):
    """Clip every column to its training quantiles [low, high]."""

    def __init__(self, low: float = 0.01, high: float = 0.99):
        self.low = low
        self.high = high

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        self.lower_ = np.nanquantile(X, self.low, axis=0).astype(np.float32)
        self.upper_ = np.nanquantile(X, self.high, axis=0).astype(np.float32)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        # float32 bounds, as in the ONNX graph, so both clip at exactly the same values.
        return np.clip(np.asarray(X, dtype=np.float32), self.lower_, self.upper_)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features if input_features is not None else [], dtype=object)


def _shape(operator) -> None:
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([rows, operator.raw_operator.n_features_in_])


def _convert(scope, operator, container) -> None:
    clipper = operator.raw_operator
    lower, upper = scope.get_unique_variable_name("lower"), scope.get_unique_variable_name("upper")
    container.add_initializer(lower, TensorProto.FLOAT, [clipper.n_features_in_], clipper.lower_.tolist())
    container.add_initializer(upper, TensorProto.FLOAT, [clipper.n_features_in_], clipper.upper_.tolist())
    floor = scope.get_unique_variable_name("floored")
    container.add_node(
        "Max", [operator.inputs[0].full_name, lower], [floor], name=scope.get_unique_operator_name("Max")
    )
    container.add_node(
        "Min", [floor, upper], [operator.outputs[0].full_name], name=scope.get_unique_operator_name("Min")
    )


update_registered_converter(QuantileClipper, "PluginsQuantileClipper", _shape, _convert)

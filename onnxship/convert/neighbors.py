"""ONNX converter for KNeighborsClassifier fitted on a sparse matrix.

A ColumnTransformer returns a sparse matrix when one-hot columns make most of its output zeros
(density under ``sparse_threshold``, 0.3 by default), so a neighbours model behind the usual
one-hot front is often fitted on one. skl2onnx 1.20 then fails ("Unexpected type csr_matrix for
input 1 of operator 'OnnxScan'"): it embeds the training rows as they are stored. The distances
do not depend on how the rows are stored, so the model is converted as a shallow copy holding the
same rows as a dense array, by skl2onnx's own converter. A dense fit goes to skl2onnx unchanged.
"""

from __future__ import annotations

import copy

from scipy import sparse
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from skl2onnx.operator_converters.nearest_neighbours import convert_nearest_neighbors_classifier

# The options skl2onnx registers for KNeighborsClassifier; re-registering must keep them.
OPTIONS = {
    "zipmap": [True, False, "columns"],
    "nocl": [True, False],
    "raw_scores": [True, False],
    "output_class_labels": [False, True],
    "optim": [None, "cdist"],
}

shape = calculate_linear_classifier_output_shapes


def convert(scope, operator, container) -> None:
    neighbours = operator.raw_operator
    if sparse.issparse(getattr(neighbours, "_fit_X", None)):
        dense = copy.copy(neighbours)
        dense._fit_X = neighbours._fit_X.toarray()
        operator.raw_operator = dense
    convert_nearest_neighbors_classifier(scope, operator, container)

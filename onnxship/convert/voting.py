"""ONNX converter for VotingClassifier(voting="soft") with its default ``flatten_transform=True``.

skl2onnx 1.20 refuses any VotingClassifier whose ``flatten_transform`` is True, but that setting
only shapes what ``transform`` returns; ``predict_proba`` is the weighted mean of the estimators'
probabilities either way. So the estimator is converted as the same ensemble with
``flatten_transform=False``, by skl2onnx's own converter (a shallow copy: the fitted estimator is
left alone), its ``weights`` as an array (skl2onnx calls ``weights.sum()``, which a list lacks).
Hard voting has no ``predict_proba`` to ship and still goes to skl2onnx unchanged.
"""

from __future__ import annotations

import copy

import numpy as np
from skl2onnx.operator_converters.voting_classifier import convert_voting_classifier
from skl2onnx.shape_calculators.voting_classifier import voting_classifier_shape_calculator

# The options skl2onnx registers for VotingClassifier; re-registering must keep them (zipmap off).
OPTIONS = {"zipmap": [True, False, "columns"], "output_class_labels": [False, True], "nocl": [True, False]}

shape = voting_classifier_shape_calculator


def convert(scope, operator, container) -> None:
    voting = operator.raw_operator
    flattened = voting.voting == "soft" and voting.flatten_transform not in (False, None)
    # skl2onnx divides by weights.sum(): weights given as a list (as users write them) fail.
    listed = voting.weights is not None and not isinstance(voting.weights, np.ndarray)
    if flattened or listed:
        view = copy.copy(voting)
        view.flatten_transform = False if flattened else voting.flatten_transform
        view.weights = None if voting.weights is None else np.asarray(voting.weights, dtype=np.float64)
        operator.raw_operator = view
    convert_voting_classifier(scope, operator, container)

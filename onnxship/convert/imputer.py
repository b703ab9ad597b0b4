"""ONNX converter for SimpleImputer on strings with its default ``missing_values=np.nan``.

Users impute categorical columns the way they impute numbers, ``SimpleImputer(strategy=
"most_frequent")``, and skl2onnx 1.20 refuses that on a string input (NotImplementedError: "The
converter is implemented when the missing values are string"). A string tensor holds no NaN: in
the model input frame a missing category is "" (contract v1), which this imputer leaves as it is,
in scikit-learn as in ONNX. So the step is the identity on strings (a Concat of several inputs).
Any other imputer, and this one with ``add_indicator``, goes to skl2onnx's converter unchanged.
"""

from __future__ import annotations

from skl2onnx.common.data_types import StringTensorType
from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes

shape = calculate_sklearn_imputer_output_shapes


def _identity_on_strings(operator) -> bool:
    imputer = operator.raw_operator
    strings = all(isinstance(i.type, StringTensorType) for i in operator.inputs)
    return strings and not isinstance(imputer.missing_values, str) and not imputer.add_indicator


def convert(scope, operator, container) -> None:
    if not _identity_on_strings(operator):
        convert_sklearn_imputer(scope, operator, container)
        return
    sources, target = [i.full_name for i in operator.inputs], operator.outputs[0].full_name
    if len(sources) == 1:
        container.add_node("Identity", sources, [target], name=scope.get_unique_operator_name("Identity"))
    else:
        container.add_node("Concat", sources, [target], axis=1, name=scope.get_unique_operator_name("Concat"))

"""RobustScaler and MaxAbsScaler computed in ONNX exactly as scikit-learn computes them on float32
input.

skl2onnx converts RobustScaler to the Scaler op, (x - center) * (1 / scale) in float32, while
scikit-learn 1.9 runs ``X -= center_`` then ``X /= scale_`` in place on the float32 array, each
step in the dtype of the fitted statistic (center_ float32, scale_ float64 after a float32 fit),
rounded to float32 after each. The results are one unit in the last place apart, enough for a row
on a split threshold to take the other branch: RobustScaler in front of a forest differed by 0.025
(56 of 5,012 rows over 1e-4) on the bundled data. With the ``exact`` option (export.exact_scaling
sets it for every scaler of a model that holds trees) each step is written as numpy does it: a
float32 op with a float32 statistic, or Cast to double, the op with the float64 statistic, Cast
back. MaxAbsScaler (``X /= scale_``, float32; 0.075 in front of a forest, 0.31 in front of
HistGradientBoosting before) is written the same way, and its ``clip=True``, which skl2onnx does not
apply, always is (Max, Min). Without the option, skl2onnx's converter runs unchanged.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto
from skl2onnx.operator_converters.common import concatenate_variables
from skl2onnx.operator_converters.scaler_op import convert_sklearn_scaler
from skl2onnx.shape_calculators.scaler import calculate_sklearn_scaler_output_shapes
from sklearn.preprocessing import MaxAbsScaler

# skl2onnx's own option for this converter, and ours.
OPTIONS = {"div": ["std", "div", "div_cast"], "exact": [False, True]}

shape = calculate_sklearn_scaler_output_shapes


def convert(scope, operator, container) -> None:
    scaler = operator.raw_operator
    clip = isinstance(scaler, MaxAbsScaler) and scaler.clip
    if not (container.get_options(scaler, dict(exact=False))["exact"] or clip):
        convert_sklearn_scaler(scope, operator, container)
        return
    x = concatenate_variables(scope, operator.inputs, container)
    steps = _steps(scaler)
    if clip:
        steps += [("Max", np.float32([-1.0])), ("Min", np.float32([1.0]))]
    for i, (op, values) in enumerate(steps):
        target = operator.outputs[0].full_name if i == len(steps) - 1 else None
        x = _in_place(scope, container, (x, op, values), target)


def _steps(scaler) -> list[tuple[str, np.ndarray]]:
    """The in-place operations of ``scaler.transform``, in order, with their statistics."""
    if isinstance(scaler, MaxAbsScaler):
        return [("Div", np.asarray(scaler.scale_))]
    steps = []
    if scaler.with_centering:
        steps.append(("Sub", np.asarray(scaler.center_)))
    if scaler.with_scaling:
        steps.append(("Div", np.asarray(scaler.scale_)))
    return steps or [("Sub", np.zeros(1, dtype=np.float32))]  # the identity


def _in_place(scope, container, step: tuple[str, str, np.ndarray], target: str | None) -> str:
    """``x op= values`` on a float32 array, as numpy computes it: in float32 for float32 values,
    else in float64 and rounded back to float32."""
    x, op, values = step
    node = scope.get_unique_operator_name
    wide = values.dtype != np.float32
    dtype = TensorProto.DOUBLE if wide else TensorProto.FLOAT
    constant = scope.get_unique_variable_name("statistic")
    container.add_initializer(
        constant, dtype, [values.size], values.astype(np.float64 if wide else np.float32).tolist()
    )
    if wide:
        widened = scope.get_unique_variable_name("widened")
        container.add_node("Cast", [x], [widened], to=TensorProto.DOUBLE, name=node("Cast"))
        x = widened
    result = scope.get_unique_variable_name("scaled") if wide or target is None else target
    container.add_node(op, [x, constant], [result], name=node(op))
    if wide:
        narrowed = target or scope.get_unique_variable_name("narrowed")
        container.add_node("Cast", [result], [narrowed], to=TensorProto.FLOAT, name=node("Cast"))
        result = narrowed
    return result

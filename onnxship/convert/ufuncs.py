"""ONNX converter for FunctionTransformer with a common numpy ufunc as ``func``.

skl2onnx 1.20 converts a FunctionTransformer only when ``func`` is None (the identity). The
elementwise functions users put in front of a linear model have one-op (or two-op) ONNX
equivalents, listed in ``OPS``; ``inverse_func`` is never used for predictions and is ignored.
ONNX Runtime gives what numpy gives on float32 input at the edges too (log(0) = -inf, log and
sqrt of a negative = NaN, exp overflow = inf, NaN stays NaN): tests/test_field_converters.py checks
it. Anything else (a lambda, ``kw_args``, another function) is refused by name, before training
(``onnxship.convert.support``) and at export.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from skl2onnx.operator_converters.function_transformer import convert_sklearn_function_transformer
from skl2onnx.shape_calculators.function_transformer import (
    calculate_sklearn_function_transformer_output_shapes,
)

# numpy function -> (ONNX op, constant added before it, constant added after it). log1p(x) is
# Log(x + 1) and expm1(x) is Exp(x) - 1: at most 6e-8 away from numpy's float32 result near 0.
OPS = {
    np.log1p: ("Log", 1.0, None),
    np.expm1: ("Exp", None, -1.0),
    np.sqrt: ("Sqrt", None, None),
    np.abs: ("Abs", None, None),
    np.exp: ("Exp", None, None),
    np.log: ("Log", None, None),
}
SUPPORTED = ", ".join(f"np.{f.__name__}" for f in OPS)


def refusal(transformer) -> str | None:
    """Why this FunctionTransformer cannot be converted, or None if it can."""
    func = transformer.func
    if func is None:
        return None
    if func not in OPS:
        name = getattr(func, "__qualname__", None) or type(func).__name__
        return f"func {name} has no ONNX equivalent (supported: None, {SUPPORTED})"
    if transformer.kw_args:
        return f"func np.{func.__name__} with kw_args {transformer.kw_args} is not supported"
    return None


def shape(operator) -> None:
    transformer = operator.raw_operator
    if transformer.func is None:
        calculate_sklearn_function_transformer_output_shapes(operator)
        return
    reason = refusal(transformer)
    if reason:
        raise RuntimeError(f"FunctionTransformer: {reason}")
    if not all(isinstance(i.type, FloatTensorType | DoubleTensorType) for i in operator.inputs):
        raise RuntimeError("FunctionTransformer with a numpy function needs numeric (float) input")
    rows = operator.inputs[0].get_first_dimension()
    widths = [i.type.shape[1] for i in operator.inputs]
    width = sum(widths) if all(isinstance(w, int) for w in widths) else None
    operator.outputs[0].type = type(operator.inputs[0].type)([rows, width])


def convert(scope, operator, container) -> None:
    transformer = operator.raw_operator
    if transformer.func is None:
        convert_sklearn_function_transformer(scope, operator, container)
        return
    op, before, after = OPS[transformer.func]
    source = operator.inputs[0].full_name
    if len(operator.inputs) > 1:
        source = scope.get_unique_variable_name("joined")
        container.add_node(
            "Concat",
            [i.full_name for i in operator.inputs],
            [source],
            axis=1,
            name=scope.get_unique_operator_name("Concat"),
        )
    dtype = TensorProto.DOUBLE if isinstance(operator.inputs[0].type, DoubleTensorType) else TensorProto.FLOAT
    if before is not None:
        source = _add(scope, container, source, before, dtype)
    result = operator.outputs[0].full_name if after is None else scope.get_unique_variable_name("applied")
    container.add_node(op, [source], [result], name=scope.get_unique_operator_name(op))
    if after is not None:
        _add(scope, container, result, after, dtype, operator.outputs[0].full_name)


def _add(scope, container, source: str, value: float, dtype: int, target: str | None = None) -> str:
    constant = scope.get_unique_variable_name("constant")
    container.add_initializer(constant, dtype, [], [value])
    target = target or scope.get_unique_variable_name("shifted")
    container.add_node("Add", [source, constant], [target], name=scope.get_unique_operator_name("Add"))
    return target

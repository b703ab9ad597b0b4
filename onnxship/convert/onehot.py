"""ONNX converter for OneHotEncoder with infrequent categories (``max_categories``/``min_frequency``).

skl2onnx 1.20 raises NotImplementedError("Infrequent categories are not implemented") for these.
Every other OneHotEncoder goes to skl2onnx's own converter unchanged, so the models we build
export byte for byte as before.

Per input column the graph looks the value up in a table (ai.onnx.ml LabelEncoder: category ->
output column, as a float) and compares the column with 0..width-1 (Equal, Cast): one 1 per row,
or none. The table is scikit-learn's own ``transform`` written out: a frequent level keeps its
column, every infrequent level shares the "infrequent" column, the level ``drop`` removes maps to
no column (-1), and so does an unknown level unless ``handle_unknown`` is "infrequent_if_exist"
(or "warn") and the column has an infrequent group, where it joins that group.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from skl2onnx.operator_converters.one_hot_encoder import convert_sklearn_one_hot_encoder
from skl2onnx.shape_calculators.one_hot_encoder import calculate_sklearn_one_hot_encoder_output_shapes

from onnxship.convert.converters import _slice_column

# The output column of a level that has none (dropped, or unknown with nowhere to go).
NO_COLUMN = -1.0


def _infrequent(encoder) -> bool:
    return bool(getattr(encoder, "_infrequent_enabled", False))


def column_map(encoder, i: int) -> tuple[list, list[float], float, int]:
    """(categories, output column of each, output column of an unknown level, width) for input
    column ``i``, following OneHotEncoder.transform (scikit-learn 1.x ``_map_infrequent_categories``
    then the drop shift)."""
    categories = list(encoder.categories_[i])
    grouped = np.arange(len(categories))
    unknown = None
    mapping = encoder._default_to_infrequent_mappings[i]
    if mapping is not None:
        grouped = np.asarray(mapping)
        if encoder.handle_unknown in ("infrequent_if_exist", "warn"):
            unknown = int(mapping[encoder._infrequent_indices[i][0]])
    drop = encoder._drop_idx_after_grouping
    dropped = None if drop is None else drop[i]

    def shifted(column: int | None) -> float:
        if column is None or column == dropped:
            return NO_COLUMN
        return float(column - 1 if dropped is not None and column > dropped else column)

    columns = [shifted(int(g)) for g in grouped]
    return categories, columns, shifted(unknown), int(encoder._n_features_outs[i])


def _input_columns(operator) -> list[tuple[str, int, object]]:
    """(ONNX input name, column index in it, its type) for every column the encoder reads."""
    encoder = operator.raw_operator
    if len(operator.inputs) == 1:
        source = operator.inputs[0]
        return [(source.full_name, j, source.type) for j in range(len(encoder.categories_))]
    columns = []
    for source in operator.inputs:
        width = source.type.shape[1]
        if not isinstance(width, int):
            raise RuntimeError("OneHotEncoder with infrequent categories needs inputs of known width")
        columns.extend((source.full_name, j, source.type) for j in range(width))
    return columns


def shape(operator) -> None:
    encoder = operator.raw_operator
    if not _infrequent(encoder):
        calculate_sklearn_one_hot_encoder_output_shapes(operator)
        return
    rows = operator.inputs[0].get_first_dimension()
    width = int(sum(encoder._n_features_outs))
    integer = np.issubdtype(encoder.dtype, np.signedinteger)
    operator.outputs[0].type = (Int64TensorType if integer else FloatTensorType)([rows, width])


def convert(scope, operator, container) -> None:
    """Infrequent categories: our graph (module docstring); anything else: skl2onnx's converter."""
    encoder = operator.raw_operator
    if not _infrequent(encoder):
        convert_sklearn_one_hot_encoder(scope, operator, container)
        return
    axis = scope.get_unique_variable_name("axis")
    container.add_initializer(axis, TensorProto.INT64, [1], [1])
    parts = []
    for i, (source, j, kind) in enumerate(_input_columns(operator)):
        categories, columns, unknown, width = column_map(encoder, i)
        if width == 0:
            continue
        column = _slice_column(scope, container, source, axis, j)
        code = _lookup(scope, container, column, kind, (categories, columns, unknown))
        levels = scope.get_unique_variable_name(f"levels{i}")
        container.add_initializer(levels, TensorProto.FLOAT, [width], [float(k) for k in range(width)])
        hot = scope.get_unique_variable_name(f"hot{i}")
        container.add_node("Equal", [code, levels], [hot], name=scope.get_unique_operator_name("Equal"))
        parts.append(hot)
    joined = scope.get_unique_variable_name("onehot")
    if parts:
        container.add_node("Concat", parts, [joined], axis=1, name=scope.get_unique_operator_name("Concat"))
    else:  # every column dropped: an [n, 0] output, as scikit-learn gives
        raise RuntimeError("OneHotEncoder whose every column is dropped has no output to convert")
    integer = np.issubdtype(encoder.dtype, np.signedinteger)
    container.add_node(
        "Cast",
        [joined],
        [operator.outputs[0].full_name],
        to=TensorProto.INT64 if integer else TensorProto.FLOAT,
        name=scope.get_unique_operator_name("Cast"),
    )


def _lookup(scope, container, column: str, kind, table: tuple[list, list[float], float]) -> str:
    """The output column of each value of ``column`` ([n, 1]) as a float; strings and numbers
    through an ai.onnx.ml LabelEncoder, a NaN level (numbers only) through IsNaN + Where."""
    categories, columns, unknown = table
    code = scope.get_unique_variable_name("code")
    encode = {"op_domain": "ai.onnx.ml", "op_version": 2, "values_floats": columns, "default_float": unknown}
    if isinstance(kind, StringTensorType):
        keys = {"keys_strings": [str(c) for c in categories]}
        container.add_node(
            "LabelEncoder",
            [column],
            [code],
            name=scope.get_unique_operator_name("LabelEncoder"),
            **keys,
            **encode,
        )
        return code
    as_float = scope.get_unique_variable_name("as_float")
    container.add_node(
        "Cast", [column], [as_float], to=TensorProto.FLOAT, name=scope.get_unique_operator_name("Cast")
    )
    values = np.asarray(categories, dtype=np.float64)
    finite = ~np.isnan(values)
    container.add_node(
        "LabelEncoder",
        [as_float],
        [code],
        name=scope.get_unique_operator_name("LabelEncoder"),
        keys_floats=values[finite].tolist(),
        **{**encode, "values_floats": [c for c, f in zip(columns, finite, strict=True) if f]},
    )
    if finite.all():
        return code
    missing = scope.get_unique_variable_name("is_nan")
    container.add_node("IsNaN", [as_float], [missing], name=scope.get_unique_operator_name("IsNaN"))
    nan_code = scope.get_unique_variable_name("nan_code")
    container.add_initializer(nan_code, TensorProto.FLOAT, [1], [columns[int(np.flatnonzero(~finite)[0])]])
    chosen = scope.get_unique_variable_name("code_or_nan")
    container.add_node(
        "Where", [missing, nan_code, code], [chosen], name=scope.get_unique_operator_name("Where")
    )
    return chosen

"""skl2onnx converters for our own transformers, and the hook that registers a user's.

skl2onnx converts only the estimators it knows. A transformer of your own needs a shape calculator
and a converter registered with ``skl2onnx.update_registered_converter`` before export runs; list
the module that registers them under ``export.converter_modules`` in params.yaml and the export
stage imports it. ``plugins/clip.py`` is a worked example.
"""

from __future__ import annotations

import importlib

from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler, OneHotEncoder, RobustScaler

from onnxship.convert import boosters
from onnxship.core.errors import UserError
from onnxship.train.transformers import OTHER_CATEGORY, CategoryCodes, RareCategoryGrouper


def _grouper_shape(operator) -> None:
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = StringTensorType([rows, operator.raw_operator.n_features_in_])


def _grouper_converter(scope, operator, container) -> None:
    """Per column: Slice it out, map kept categories to themselves and any other value to
    "__other__" (ai.onnx.ml LabelEncoder), then Concat the columns back."""
    grouper = operator.raw_operator
    source, target = operator.inputs[0].full_name, operator.outputs[0].full_name
    if not any(grouper.grouped_):
        container.add_node("Identity", [source], [target], name=scope.get_unique_operator_name("Identity"))
        return
    axis = scope.get_unique_variable_name("axis")
    container.add_initializer(axis, TensorProto.INT64, [1], [1])
    columns = []
    for j, kept in enumerate(grouper.kept_):
        column = _slice_column(scope, container, source, axis, j)
        if grouper.grouped_[j]:
            mapped = scope.get_unique_variable_name(f"grouped{j}")
            container.add_node(
                "LabelEncoder",
                [column],
                [mapped],
                op_domain="ai.onnx.ml",
                op_version=2,
                # No level kept (none reached min_frequency): everything maps to "__other__".
                keys_strings=kept or [OTHER_CATEGORY],
                values_strings=kept or [OTHER_CATEGORY],
                default_string=OTHER_CATEGORY,
                name=scope.get_unique_operator_name("LabelEncoder"),
            )
            column = mapped
        columns.append(column)
    container.add_node("Concat", columns, [target], axis=1, name=scope.get_unique_operator_name("Concat"))


def _slice_column(scope, container, source: str, axis: str, j: int) -> str:
    """Column ``j`` of the [n, k] tensor ``source`` as its own [n, 1] tensor (ONNX Slice)."""
    start, end = scope.get_unique_variable_name("start"), scope.get_unique_variable_name("end")
    container.add_initializer(start, TensorProto.INT64, [1], [j])
    container.add_initializer(end, TensorProto.INT64, [1], [j + 1])
    column = scope.get_unique_variable_name(f"column{j}")
    container.add_node(
        "Slice", [source, start, end, axis], [column], name=scope.get_unique_operator_name("Slice")
    )
    return column


def register_builtin() -> None:
    """Our transformers' converters, and the ones that fill skl2onnx's gaps (each hands every case
    skl2onnx already converts back to skl2onnx's own converter, so those graphs do not change)."""
    # Imported here, not at the top: onehot reuses _slice_column from this module.
    from onnxship.convert import discriminant, imputer, isotonic, neighbors, onehot, scaling, ufuncs, voting

    isotonic.install()

    update_registered_converter(
        RareCategoryGrouper, "OnnxshipRareCategoryGrouper", _grouper_shape, _grouper_converter
    )
    update_registered_converter(CategoryCodes, "OnnxshipCategoryCodes", _codes_shape, _codes_converter)
    boosters.register()  # LightGBM and XGBoost classifiers, where installed
    update_registered_converter(OneHotEncoder, "SklearnOneHotEncoder", onehot.shape, onehot.convert)
    update_registered_converter(SimpleImputer, "SklearnSimpleImputer", imputer.shape, imputer.convert)
    for scaler, alias in ((RobustScaler, "SklearnRobustScaler"), (MaxAbsScaler, "SklearnMaxAbsScaler")):
        update_registered_converter(scaler, alias, scaling.shape, scaling.convert, options=scaling.OPTIONS)
    update_registered_converter(
        VotingClassifier, "SklearnVotingClassifier", voting.shape, voting.convert, options=voting.OPTIONS
    )
    update_registered_converter(
        KNeighborsClassifier,
        "SklearnKNeighborsClassifier",
        neighbors.shape,
        neighbors.convert,
        options=neighbors.OPTIONS,
    )
    update_registered_converter(
        FunctionTransformer, "SklearnFunctionTransformer", ufuncs.shape, ufuncs.convert
    )
    # Its own alias: "SklearnLinearClassifier", which it shares in skl2onnx, converts LogisticRegression.
    update_registered_converter(
        LinearDiscriminantAnalysis,
        "OnnxshipLinearDiscriminantAnalysis",
        discriminant.shape,
        discriminant.convert,
        options=discriminant.OPTIONS,
    )


def register(modules: list[str]) -> None:
    """Register our converters, then import each user module (which registers its own)."""
    register_builtin()
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise UserError(
                f"export.converter_modules: cannot import '{name}' ({exc}); give a module path "
                "importable from the project root, e.g. plugins.clip"
            ) from None


def _codes_shape(operator) -> None:
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([rows, len(operator.raw_operator.tables)])


def _codes_converter(scope, operator, container) -> None:
    """Per column: Slice it out and look its code up (ai.onnx.ml LabelEncoder, string -> float,
    unknown -> the table's default); Concat the codes. graph.simplify later removes the Slice of a
    Concat of the graph inputs, leaving one LabelEncoder per input."""
    source, target = operator.inputs[0].full_name, operator.outputs[0].full_name
    axis = scope.get_unique_variable_name("axis")
    container.add_initializer(axis, TensorProto.INT64, [1], [1])
    codes = []
    for j, (keys, values, default) in enumerate(operator.raw_operator.tables):
        column = _slice_column(scope, container, source, axis, j)
        code = scope.get_unique_variable_name(f"code{j}")
        container.add_node(
            "LabelEncoder",
            [column],
            [code],
            op_domain="ai.onnx.ml",
            op_version=2,
            keys_strings=keys,
            values_floats=values,
            default_float=default,
            name=scope.get_unique_operator_name("LabelEncoder"),
        )
        codes.append(code)
    container.add_node("Concat", codes, [target], axis=1, name=scope.get_unique_operator_name("Concat"))

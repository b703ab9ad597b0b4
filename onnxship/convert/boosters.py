"""LightGBM and XGBoost classifiers in skl2onnx: onnxmltools' converters, registered when the library
is installed, so that any pipeline ending in an LGBMClassifier or XGBClassifier converts (ours, and a
user's ColumnTransformer + booster); plus the exact float32 thresholds of both.

ONNX tree ensembles compare float32 inputs with float32 thresholds:
- LightGBM splits on ``x <= t`` with a float64 t. Rounded to the nearest float32, t can land above
  itself, and a row between the two goes the other way (measured: 0.07 on a bundled row).
  ``lightgbm_aligned`` rewrites every numeric threshold to the largest float32 <= t, for which
  ``x <= t`` and ``x <= t32`` agree on every float32 x, and the converter always converts that copy.
- XGBoost splits on ``x < t`` with a float32 t already, and onnxmltools writes BRANCH_LT with those
  same values: exact as it is (tests/test_boosters.py checks it node by node and on adversarial rows).
Both ``*_thresholds`` give {input column: sorted float64 thresholds} for the gate's boundary rows.

Missing values: LightGBM sends a NaN to a split's default side only where training saw NaN; elsewhere
it reads NaN as 0. onnxmltools infers that side from the split's default_left flag and the sign of
its threshold, right for the flags LightGBM 4 writes; the aligned copy also sets default_left to the
side 0 goes, so that holds whatever the flag said. LightGBM's zero_as_missing (0 takes the default
side) has no ONNX equivalent and is refused with one line, as is linear_tree (onnxmltools would drop
the leaves' linear models).
"""

from __future__ import annotations

import copy
import importlib.util
import re

import numpy as np
from skl2onnx import update_registered_converter
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

from onnxship.core.errors import UserError
from onnxship.train.boosters import xgboost_trees

OPTIONS = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
# LightGBM's decision_type bits (include/LightGBM/tree.h): categorical split, NaN goes left, and the
# missing type in bits 2-3 (0 none: NaN reads as 0; 1 zero; 2 NaN).
CATEGORICAL, DEFAULT_LEFT = 1, 2
MISSING_NONE, MISSING_ZERO = 0, 1
SPLITS = re.compile(r"^threshold=(?P<thresholds>[^\n]*)\ndecision_type=(?P<types>[^\n]*)$", re.M)
# The header's byte size of each tree, which would no longer hold; without it LightGBM reads the
# trees one after the other.
TREE_SIZES = re.compile(r"^tree_sizes=[^\n]*\n", re.M)
LINEAR_TREE = re.compile(r"^is_linear=1$", re.M)


def register() -> None:
    """Register the converter of each installed library (neither is imported if not installed).
    Without onnxmltools nothing is registered, and export names the unconvertible step."""
    if importlib.util.find_spec("onnxmltools") is None:
        return
    if importlib.util.find_spec("lightgbm") is not None:
        from lightgbm import LGBMClassifier

        update_registered_converter(
            LGBMClassifier,
            "OnnxshipLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            _lightgbm_converter,
            options=OPTIONS,
        )
    if importlib.util.find_spec("xgboost") is not None:
        from xgboost import XGBClassifier

        update_registered_converter(
            XGBClassifier,
            "OnnxshipXGBClassifier",
            calculate_linear_classifier_output_shapes,
            _xgboost_converter,
            options=OPTIONS,
        )


class _MlOpsetOne:
    """A converter container whose ai.onnx.ml nodes get version 1 unless the converter names one.

    onnxmltools adds TreeEnsembleClassifier without a version, and skl2onnx then takes the newest the
    installed onnx knows (5), which skl2onnx itself refuses to write; version 1 is what skl2onnx's
    own tree converters write."""

    def __init__(self, container):
        self._container = container

    def __getattr__(self, name):
        return getattr(self._container, name)

    def add_node(self, *args, op_domain="", op_version=None, **attrs):
        if op_domain == "ai.onnx.ml" and op_version is None:
            op_version = 1
        return self._container.add_node(*args, op_domain=op_domain, op_version=op_version, **attrs)


def _lightgbm_converter(scope, operator, container) -> None:
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

    operator.raw_operator = lightgbm_aligned(operator.raw_operator)
    convert_lightgbm(scope, operator, _MlOpsetOne(container))


def _xgboost_converter(scope, operator, container) -> None:
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

    convert_xgboost(scope, operator, _MlOpsetOne(container))


def _below(t: float) -> float:
    """The largest float32 <= t, as a float64."""
    with np.errstate(over="ignore"):
        rounded = np.float32(t)
    if float(rounded) > t:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return float(rounded)


def _aligned_splits(match: re.Match) -> str:
    """One tree's threshold and decision_type lines with every numeric threshold aligned."""
    thresholds, types = match["thresholds"].split(), [int(v) for v in match["types"].split()]
    for i, kind in enumerate(types):
        if kind & CATEGORICAL:  # the threshold indexes the tree's category sets: not a number
            continue
        missing = (kind >> 2) & 3
        if missing == MISSING_ZERO:
            raise UserError(
                "LightGBM with zero_as_missing=True does not convert to ONNX exactly (a 0 takes the "
                "split's missing-value side, which ONNX trees cannot express): fit it with "
                "zero_as_missing=False and NaN for missing values"
            )
        t = _below(float(thresholds[i]))
        thresholds[i] = repr(t)
        if missing == MISSING_NONE:  # LightGBM reads NaN as 0 here: NaN goes where 0 goes
            types[i] = (kind | DEFAULT_LEFT) if t >= 0.0 else (kind & ~DEFAULT_LEFT)
    return f"threshold={' '.join(thresholds)}\ndecision_type={' '.join(map(str, types))}"


def lightgbm_aligned(model):
    """A copy of a fitted LGBMClassifier whose numeric thresholds are float32 values (the largest
    <= each threshold) and whose NaN directions are explicit: it predicts exactly what ``model``
    predicts on float32 inputs, NaN included, and converts to ONNX without a rounding error."""
    import lightgbm

    text = model.booster_.model_to_string()
    if LINEAR_TREE.search(text):
        raise UserError(
            "LightGBM with linear_tree=True does not convert to ONNX (onnxmltools writes the leaves' "
            "constants and drops their linear models): fit it with linear_tree=False"
        )
    text = SPLITS.sub(_aligned_splits, TREE_SIZES.sub("", text, count=1))
    aligned = copy.deepcopy(model)
    aligned._Booster = lightgbm.Booster(model_str=text)
    return aligned


def xgboost_aligned(model):
    """``model`` itself: XGBoost's thresholds are float32 values compared with ``x < t``, and the
    converter writes them as they are with BRANCH_LT (tests/test_boosters.py proves it)."""
    return model


def lightgbm_thresholds(model) -> dict[int, np.ndarray]:
    """{input column: its numeric split thresholds, sorted, unique, float64} of a fitted LGBMClassifier."""
    found: dict[int, set[float]] = {}
    tree = model.booster_.dump_model()["tree_info"]
    todo = [t["tree_structure"] for t in tree]
    while todo:
        node = todo.pop()
        if "split_feature" not in node:
            continue
        if node["decision_type"] == "<=":
            found.setdefault(int(node["split_feature"]), set()).add(float(node["threshold"]))
        todo += [node["left_child"], node["right_child"]]
    return {f: np.array(sorted(v)) for f, v in sorted(found.items())}


def xgboost_thresholds(model) -> dict[int, np.ndarray]:
    """{input column: its numeric split thresholds, sorted, unique, float64} of a fitted XGBClassifier."""
    found: dict[int, set[float]] = {}
    for tree in xgboost_trees(model):
        types = tree.get("split_type") or [0] * len(tree["left_children"])
        for left, feature, condition, kind in zip(
            tree["left_children"], tree["split_indices"], tree["split_conditions"], types, strict=True
        ):
            if left != -1 and kind == 0:  # a numeric split (leaves hold their value here)
                found.setdefault(int(feature), set()).add(float(np.float32(condition)))
    return {f: np.array(sorted(v)) for f, v in sorted(found.items())}


def lightgbm_splits(model) -> list[tuple[int, float, str]]:
    """(input column, threshold, "<=") per distinct numeric split of a fitted LGBMClassifier: the
    triples the boundary rows' split readers take (``lightgbm_thresholds`` as a flat list)."""
    return [(f, float(t), "<=") for f, values in lightgbm_thresholds(model).items() for t in values]


def xgboost_splits(model) -> list[tuple[int, float, str]]:
    """(input column, threshold, "<") per distinct numeric split of a fitted XGBClassifier (x < t goes
    left in XGBoost)."""
    return [(f, float(t), "<") for f, values in xgboost_thresholds(model).items() for t in values]

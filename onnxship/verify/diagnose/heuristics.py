"""Comparing one step's scikit-learn output with its ONNX tensor, and naming the kind of
divergence: swapped columns, category order, a step not applied, rounded constants. Also the
static check of the graph for weights rounded to float16. Numbers only; the words are in
``messages``."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper

from onnxship.verify.diagnose import messages
from onnxship.verify.diagnose.records import Divergence, Step
from onnxship.verify.diagnose.steps import column_labels, input_column

# Steps compare equal within float32 noise: |onnx - sklearn| <= ATOL + RTOL * |sklearn|.
ATOL, RTOL = 1e-5, 1e-4
# A restored or reverted model "matches" scikit-learn within this probability difference.
MATCH = 1e-4


def close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise float32-noise equality (NaN equals NaN)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        return both_nan | (np.abs(a - b) <= ATOL + RTOL * np.abs(a))


def compare_step(step: Step, got: np.ndarray) -> Divergence | None:
    """None if the ONNX tensor matches the step's output, else what differs and how."""
    ref = step.value
    got = np.asarray(got).reshape(len(ref), -1)
    if got.shape != ref.shape:
        return Divergence("shape", messages.shape(got.shape, ref.shape), columns=[])
    labels = column_labels(step)
    if ref.dtype == object or got.dtype == object:
        equal = ref.astype(str) == got.astype(str)
        bad = [j for j in range(ref.shape[1]) if not equal[:, j].all()]
        if not bad:
            return None
        detail = messages.other_strings(int((~equal).any(axis=1).sum()), len(ref))
        return Divergence("values", detail, [labels[j] for j in bad], input_columns(step, bad))
    ok = close(ref, got)
    bad = [j for j in range(ref.shape[1]) if not ok[:, j].all()]
    if not bad:
        return None
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.abs(ref64 - got64)
    finite = diff[np.isfinite(diff)]
    found = classify(step, ref64, got64, bad)
    found.columns, found.input_columns = [labels[j] for j in bad], input_columns(step, bad)
    # JSON has no NaN or inf: NaN here means no difference is finite (a value missing on one side).
    found.max_abs_diff = float(finite.max()) if finite.size else math.nan
    return found


def input_columns(step: Step, bad: list[int]) -> list[str]:
    """The step's input columns behind the output columns ``bad``, in order, each once."""
    labels = column_labels(step)
    seen = []
    for j in bad:
        name = input_column(labels[j])
        mine = step.kind == "concat" or (step.columns and name in step.columns)
        if mine and name not in seen:
            seen.append(name)
    return seen


def classify(step: Step, ref: np.ndarray, got: np.ndarray, bad: list[int]) -> Divergence:
    """The kind of divergence: swapped columns, category order, a step not applied, precision."""
    found = swapped_or_skipped(step, ref, got, bad) or category_order(step, ref, got, bad)
    if found:
        return found
    scale = np.abs(ref[:, bad]) + 1e-12
    with np.errstate(invalid="ignore"):
        relative = float(np.nanmax(np.abs(ref[:, bad] - got[:, bad]) / np.maximum(scale, 1e-3)))
    if relative < 1e-2:
        return Divergence("precision", messages.rounded(relative))
    if step.kind == "model":
        return Divergence("values", messages.MODEL_DIFFERS)
    return Divergence("values", messages.VALUES_DIFFER)


def swapped_or_skipped(step: Step, ref: np.ndarray, got: np.ndarray, bad: list[int]) -> Divergence | None:
    """Columns that hold each other's values, or a step whose output equals its input (one output
    column per input column only)."""
    columns = step.columns
    if not (step.kind in ("select", "transform") and columns and ref.shape[1] == len(columns)):
        return None
    pairs = []
    for j in bad:
        for k in bad:
            if k > j and close(ref[:, j], got[:, k]).all() and close(ref[:, k], got[:, j]).all():
                pairs.append((columns[j], columns[k]))
    if pairs:
        return Divergence("swapped columns", messages.swapped(pairs), pairs=pairs)
    before = step.input
    numeric_input = before is not None and before.shape == ref.shape and before.dtype != object
    if numeric_input and all(close(before[:, j].astype(np.float64), got[:, j]).all() for j in bad):
        return Divergence("not applied", messages.NOT_APPLIED)
    return None


def category_order(step: Step, ref: np.ndarray, got: np.ndarray, bad: list[int]) -> Divergence | None:
    """Each category in another category's slot: one-hot columns permuted within a column's block,
    or ordinal codes consistently renamed."""
    columns = step.columns
    categories = getattr(step.estimator, "categories_", None)
    if categories is not None and columns:
        offsets = np.cumsum([0] + [len(c) for c in categories])
        reordered = []
        for col, lo, hi in zip(columns, offsets[:-1], offsets[1:], strict=True):
            if not any(lo <= j < hi for j in bad):
                continue
            r, g = ref[:, lo:hi], got[:, lo:hi]
            if np.array_equal(np.sort(r.sum(axis=0)), np.sort(g.sum(axis=0))) and _is_permutation(r, g):
                reordered.append(col)
        if reordered:
            return Divergence("category order", messages.ONE_HOT_ORDER, reordered=reordered)
    relabelled = [j for j in bad if _is_relabelling(ref[:, j], got[:, j])]
    if relabelled and len(relabelled) == len(bad):
        labels = column_labels(step)
        names = list(dict.fromkeys(input_column(labels[j]) for j in relabelled))
        return Divergence("category order", messages.CODE_ORDER, reordered=names)
    return None


def _is_relabelling(ref: np.ndarray, got: np.ndarray) -> bool:
    """True if ``got`` is ``ref`` with its integer codes consistently renamed (ordinal encoding with
    the category list in another order): a bijection between the distinct values, not the identity."""
    if not (np.isfinite(ref).all() and np.isfinite(got).all()):
        return False
    if not (np.array_equal(ref, np.round(ref)) and np.array_equal(got, np.round(got))):
        return False
    pairs = set(zip(ref.tolist(), got.tolist(), strict=True))
    forward = {a for a, _ in pairs}
    backward = {b for _, b in pairs}
    return len(pairs) == len(forward) == len(backward) and any(a != b for a, b in pairs)


def _is_permutation(ref: np.ndarray, got: np.ndarray) -> bool:
    """True if the ONNX one-hot block is scikit-learn's with its columns permuted (consistently)."""
    mapping: dict[int, int] = {}
    for r_row, g_row in zip(ref, got, strict=True):
        r_hot, g_hot = np.flatnonzero(r_row == 1), np.flatnonzero(g_row == 1)
        if len(r_hot) != len(g_hot) or len(r_hot) > 1:
            return False
        if len(r_hot) == 1 and mapping.setdefault(int(r_hot[0]), int(g_hot[0])) != int(g_hot[0]):
            return False
    return len(mapping) > 0 and any(k != v for k, v in mapping.items())


def driving_features(effect: list[dict]) -> list[dict]:
    """Features whose restore alone removes at least a quarter of the flips (or, with no flips,
    of the max diff), most effective first."""
    base, singles = effect[0], effect[1:-1]
    if base["flipped"]:
        found = [e for e in singles if e["flipped"] <= 0.75 * base["flipped"]]
        return sorted(found, key=lambda e: (e["flipped"], e["max_abs_diff"]))
    found = [e for e in singles if e["max_abs_diff"] <= 0.75 * base["max_abs_diff"]]
    return sorted(found, key=lambda e: e["max_abs_diff"])


def float16_nodes(model: onnx.ModelProto) -> list[dict]:
    """Nodes whose float constants all sit exactly on float16 values (at least 8 non-integer ones):
    a float32 model does not look like that unless its weights were rounded."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    found = []
    for node in model.graph.node:
        values = []
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.FLOATS:
                values.append(np.asarray(attr.floats, np.float32))
            elif attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == onnx.TensorProto.FLOAT:
                values.append(numpy_helper.to_array(attr.t).ravel())
        values += [inits[n].ravel() for n in node.input if n in inits and inits[n].dtype == np.float32]
        if not values:
            continue
        flat = np.concatenate(values).astype(np.float32)
        flat = flat[np.isfinite(flat) & (flat != np.round(flat))]
        if len(flat) >= 8 and np.array_equal(flat.astype(np.float16).astype(np.float32), flat):
            found.append(
                {
                    "node": node.name or node.op_type,
                    "op": node.op_type,
                    "values": len(flat),
                    "outputs": list(node.output),
                }
            )
    return found

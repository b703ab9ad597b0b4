"""Every sentence the diagnosis writes: the ``detail`` of a divergence and the ``message`` of a
finding (each message is also a line of the parity stage's log). Wording lives here so that the
heuristics stay numbers and the text can be read, and changed, in one place."""

from __future__ import annotations

from onnxship.verify.diagnose.records import Divergence
from onnxship.verify.metadata_check import MetadataCheck

# --- how a step's output differs (Divergence.detail) ---------------------------------------------


def shape(got: tuple, ref: tuple) -> str:
    return f"shape {list(got)} vs scikit-learn {list(ref)}"


def other_strings(rows: int, total: int) -> str:
    return f"{rows} of {total} rows hold other strings"


def swapped(pairs: list[tuple[str, str]]) -> str:
    return "; ".join(f"'{a}' and '{b}' hold each other's values" for a, b in pairs)


NOT_APPLIED = "the output equals the step's input: the step is missing"
ONE_HOT_ORDER = "each category lands in another category's one-hot slot"
CODE_ORDER = "each category's code is another category's (ordinal codes permuted)"
MODEL_DIFFERS = "the estimator's output differs though its input matches"
VALUES_DIFFER = "values differ"


def rounded(relative: float) -> str:
    return f"small relative differences (max {relative:.2g}): rounded constants"


# --- findings (Finding.message) ----------------------------------------------------------------------


def step_differs(step: str, diff: Divergence) -> str:
    """A divergent step in plain words: which columns and what kind of divergence."""
    if diff.cause == "swapped columns":
        pairs = "; ".join(f"numeric inputs '{a}' and '{b}' look swapped" for a, b in diff.pairs or [])
        return f"step {step} differs: {pairs}"
    if diff.cause == "category order":
        reordered = diff.reordered or []
        cols = ", ".join(f"'{c}'" for c in reordered)
        return f"step {step} differs for column{'s' * (len(reordered) > 1)} {cols}: category order"
    inputs = diff.input_columns or []
    cols = ", ".join(f"'{c}'" for c in inputs[:6]) + (" ..." if len(inputs) > 6 else "")
    where = f" for column{'s' * (len(inputs) > 1)} {cols}" if cols else ""
    return f"step {step} differs{where}: {diff.detail}"


def driven_by(base: dict, drivers: list[dict]) -> str:
    """What restoring each driving feature alone does (appended to a step's message)."""
    return "; driven by " + ", ".join(
        f"'{d['feature']}' (restoring it alone: {base['flipped']} -> {d['flipped']} flipped, "
        f"max diff {base['max_abs_diff']:.2g} -> {d['max_abs_diff']:.2g})"
        for d in drivers[:3]
    )


def swap_confirmed(a: str, b: str, diff: float) -> str:
    return (
        f"numeric inputs '{a}' and '{b}' look swapped: feeding them crossed "
        f"restores parity (max diff {diff:.2g})"
    )


def float16_weights(node: dict, step: str) -> str:
    return (
        f"node '{node['node']}' ({node['op']}) of step {step} holds {node['values']} "
        "float constants that are all exact float16 numbers: its weights were rounded to float16"
    )


def threshold_differs(check: MetadataCheck) -> str:
    return (
        f"onnx_metadata.json threshold {check.threshold!r} differs from the trained "
        f"threshold {check.trained_threshold!r}: decisions move, probabilities do not"
    )


def positive_column(check: MetadataCheck, complement: bool) -> str:
    """``complement``: the backend's probabilities are 1 - scikit-learn's."""
    return (
        f"positive_class_index {check.positive_class_index} reads the column of class {check.pointed!r}, "
        f"not the positive label {check.positive_label!r}"
        + (" (the backend's p equals 1 - p_sklearn)" if complement else "")
    )


def foreign_node(op_type: str, outputs: list[str]) -> str:
    return (
        f"INT8 graph has a {op_type} node writing {outputs} that is "
        "neither in the FP32 graph nor made by quantization"
    )


def quantized_node(node: str, base_diff: float, drift: dict) -> str:
    return (
        f"quantized node '{node}' drives the INT8 drift: keeping it FP32 "
        f"brings the max diff {base_diff:.3g} -> {drift['max_abs_diff_if_fp32']:.3g} "
        f"({drift['flipped_if_fp32']} flipped) on the examined rows"
    )


def no_step_comparison(exc: Exception) -> str:
    return f"no step comparison: {type(exc).__name__}: {exc}"

"""Where a failing backend goes wrong: the pipeline step, the input columns, the contract field or
the quantized node, in plain words.

The gate says THAT a backend disagrees with scikit-learn; this module says WHERE. It compares, on a
bounded set of rows (the worst and flipped rows plus a seeded sample), each scikit-learn step's
output with the ONNX tensor that skl2onnx made for that step (the tensor names come from
converting the same fitted pipeline again, ``convert_sklearn(..., intermediate=True)``), finds the
first step that diverges, maps its columns back to the input columns, and says what kind of
divergence it is (swapped columns, category order, a step not applied, rounded constants). It then
restores that step's output column by column (sklearn's values fed into the rest of the ONNX
graph) to measure which input features drive the divergence. For an INT8 backend it also compares
the graph with the FP32 one: nodes that are neither FP32 nodes nor quantization nodes, and, per
quantized node, how far the drift drops when that node alone is put back to FP32.

Pure functions; nothing here decides pass or fail. Findings are only emitted for measured
differences, so a correct export gets none.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import onnx
import pandas as pd
from onnx import numpy_helper

from onnxship.contract import runtime
from onnxship.contract.encode import Encoder
from onnxship.convert.graph import graph_order, prune_unused

# Steps compare equal within float32 noise: |onnx - sklearn| <= ATOL + RTOL * |sklearn|.
ATOL, RTOL = 1e-5, 1e-4
# A restored or reverted model "matches" scikit-learn within this probability difference.
MATCH = 1e-4
QUANTIZATION_OPS = {
    "DynamicQuantizeLinear",
    "QuantizeLinear",
    "DequantizeLinear",
    "MatMulInteger",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "QLinearMatMul",
    "QGemm",
    "Cast",
    "Mul",
    "Sum",
}


# --- rows ------------------------------------------------------------------------------------------


def pick_rows(reference: np.ndarray, backend: np.ndarray, threshold: float, limit: int, seed: int = 0):
    """At most ``limit`` row indices: the worst rows, every flipped row that fits, and a seeded
    sample of the rest, sorted."""
    diff = np.abs(reference - backend)
    worst = np.argsort(-diff, kind="stable")[: limit // 3]
    flipped = np.flatnonzero((reference >= threshold) != (backend >= threshold))[: limit // 3]
    chosen = set(worst.tolist()) | set(flipped.tolist())
    rest = np.setdiff1d(np.arange(len(reference)), np.fromiter(chosen, int, len(chosen)))
    room = max(limit - len(chosen), 0)
    if room and len(rest):
        chosen |= set(np.random.default_rng(seed).choice(rest, min(room, len(rest)), replace=False).tolist())
    return np.array(sorted(chosen), dtype=int)


def session(model: onnx.ModelProto):
    return runtime.session(model.SerializeToString())


def with_outputs(model: onnx.ModelProto, names: dict[str, int]) -> onnx.ModelProto:
    """A copy of ``model`` that also outputs the named intermediate tensors ({name: elem type})."""
    probe = onnx.ModelProto.FromString(model.SerializeToString())
    present = {o.name for o in probe.graph.output}
    for name, elem in names.items():
        if name not in present:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
    return probe


# --- scikit-learn steps and their ONNX tensors ------------------------------------------------------


def sklearn_steps(pipeline, X: pd.DataFrame) -> list[dict]:
    """Each step's output on ``X`` in data-flow order, with the input columns it covers.

    Steps: per ColumnTransformer branch its column selection and each sub-step, then the
    ColumnTransformer output (``preprocess``), then the model's probabilities.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    steps = []
    prep_name, prep = pipeline.steps[0]
    if isinstance(prep, ColumnTransformer):
        for name, transformer, columns in prep.transformers_:
            if transformer in ("drop", "passthrough") or name == "remainder":
                continue
            columns = list(columns)
            current = X[columns]
            steps.append(
                {
                    "step": f"{prep_name}/{name}",
                    "kind": "select",
                    "value": current.to_numpy(),
                    "columns": columns,
                    "estimator": None,
                    "branch": name,
                }
            )
            subs = transformer.steps if isinstance(transformer, Pipeline) else [(name, transformer)]
            for sub_name, sub in subs:
                before = current
                current = sub.transform(current)
                steps.append(
                    {
                        "step": f"{prep_name}/{name}/{sub_name}",
                        "kind": "transform",
                        "value": _dense(current),
                        "input": _dense(before),
                        "columns": columns,
                        "estimator": sub,
                        "branch": name,
                    }
                )
        steps.append(
            {
                "step": prep_name,
                "kind": "concat",
                "value": _dense(prep.transform(X)),
                "columns": None,
                "estimator": prep,
                "branch": None,
            }
        )
    steps.append(
        {
            "step": pipeline.steps[-1][0],
            "kind": "model",
            "value": pipeline.predict_proba(X),
            "columns": None,
            "estimator": pipeline.steps[-1][1],
            "branch": None,
        }
    )
    return steps


def _dense(value) -> np.ndarray:
    if hasattr(value, "toarray"):
        value = value.toarray()
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value)


def onnx_step_tensors(pipeline, features: dict, model: onnx.ModelProto) -> dict[int, dict]:
    """{id(sklearn estimator) or id of a branch's selection: {"inputs", "outputs", "types"}} from
    skl2onnx's own topology of the same fitted pipeline (same converter, same tensor names)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from onnxship.convert import converters

    converters.register_builtin()
    types = [
        (
            spec["onnx_name"],
            FloatTensorType([None, 1]) if spec["dtype"] == "float32" else StringTensorType([None, 1]),
        )
        for spec in features["inputs"]
    ]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    _, topology = convert_sklearn(
        pipeline,
        initial_types=types,
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset=opset,
        intermediate=True,
    )
    found = {}
    for op in topology.unordered_operator_iterator():
        key = (
            id(op.raw_operator)
            if op.raw_operator is not None
            else ("concat", tuple(i.full_name for i in op.inputs))
        )
        found[key] = {
            "inputs": [i.full_name for i in op.inputs],
            "outputs": [o.full_name for o in op.outputs],
            "types": [
                onnx.TensorProto.STRING if "String" in type(o.type).__name__ else onnx.TensorProto.FLOAT
                for o in op.outputs
            ],
        }
    return found


def attach_tensors(steps: list[dict], found: dict, features: dict) -> None:
    """Name, on each step, the ONNX tensor that holds its output (None if the graph has none)."""
    names = {spec["name"]: spec["onnx_name"] for spec in features["inputs"]}
    by_id = {k: v for k, v in found.items() if not isinstance(k, tuple)}
    concats = {k[1]: v for k, v in found.items() if isinstance(k, tuple)}
    for step in steps:
        step["tensor"], step["elem"] = None, onnx.TensorProto.FLOAT
        if step["kind"] == "select":
            entry = concats.get(tuple(names[c] for c in step["columns"]))
        elif step["kind"] == "model":
            entry = by_id.get(id(step["estimator"]))
            if entry:
                step["tensor"] = next((o for o in entry["outputs"] if o != "label"), entry["outputs"][-1])
                step["model_input"] = entry["inputs"][0]
            continue
        elif step["kind"] == "concat":
            model_entry = by_id.get(id(steps[-1]["estimator"]))
            step["tensor"] = model_entry["inputs"][0] if model_entry else None
            continue
        else:
            entry = by_id.get(id(step["estimator"]))
        if entry:
            step["tensor"], step["elem"] = entry["outputs"][0], entry["types"][0]


# --- comparing one step ------------------------------------------------------------------------------


def column_labels(step: dict) -> list[str]:
    """For each output column of a step, the input column (and category) it comes from."""
    columns, estimator, width = step["columns"], step["estimator"], step["value"].shape[1]
    if step["kind"] in ("select", "transform") and columns and width == len(columns):
        return list(columns)
    categories = getattr(estimator, "categories_", None)
    if categories is not None and columns and sum(len(c) for c in categories) == width:
        return [f"{col}={cat}" for col, cats in zip(columns, categories, strict=True) for cat in cats]
    if step["kind"] == "concat":
        labels = []
        for name, transformer, cols in estimator.transformers_:
            if transformer in ("drop", "passthrough") or name == "remainder":
                continue
            out = (
                transformer.get_feature_names_out(list(cols))
                if hasattr(transformer, "get_feature_names_out")
                else []
            )
            labels += [str(o) for o in out]
        if len(labels) == width:
            return labels
    return [f"column {j}" for j in range(width)]


def close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise float32-noise equality (NaN equals NaN)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        return both_nan | (np.abs(a - b) <= ATOL + RTOL * np.abs(a))


def compare_step(step: dict, got: np.ndarray) -> dict | None:
    """None if the ONNX tensor matches the step's output, else what differs and how."""
    ref = step["value"]
    got = np.asarray(got).reshape(len(ref), -1)
    if got.shape != ref.shape:
        return {
            "cause": "shape",
            "detail": f"shape {list(got.shape)} vs scikit-learn {list(ref.shape)}",
            "columns": [],
        }
    labels = column_labels(step)
    if ref.dtype == object or got.dtype == object:
        equal = ref.astype(str) == got.astype(str)
        bad = [j for j in range(ref.shape[1]) if not equal[:, j].all()]
        if not bad:
            return None
        return {
            "cause": "values",
            "columns": [labels[j] for j in bad],
            "input_columns": _inputs(step, bad),
            "detail": f"{int((~equal).any(axis=1).sum())} of {len(ref)} rows hold other strings",
        }
    ok = close(ref, got)
    bad = [j for j in range(ref.shape[1]) if not ok[:, j].all()]
    if not bad:
        return None
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.abs(ref64 - got64)
    finite = diff[np.isfinite(diff)]
    out = {
        "columns": [labels[j] for j in bad],
        "input_columns": _inputs(step, bad),
        # JSON has no NaN or inf: a value missing on one side only is counted instead.
        "max_abs_diff": float(finite.max()) if finite.size else None,
    }
    missing = int((np.isnan(ref64) != np.isnan(got64)).sum())
    if missing:
        out["missing_on_one_side"] = missing
    out.update(classify(step, ref64, got64, bad))
    return out


def _inputs(step: dict, bad: list[int]) -> list[str]:
    labels = column_labels(step)
    seen = []
    for j in bad:
        name = labels[j].split("=", 1)[0]
        mine = step["kind"] == "concat" or (step["columns"] and name in step["columns"])
        if mine and name not in seen:
            seen.append(name)
    return seen


def classify(step: dict, ref: np.ndarray, got: np.ndarray, bad: list[int]) -> dict:
    """The kind of divergence: swapped columns, category order, a step not applied, precision."""
    columns = step["columns"]
    if step["kind"] in ("select", "transform") and columns and ref.shape[1] == len(columns):
        pairs = []
        for j in bad:
            for k in bad:
                if k > j and close(ref[:, j], got[:, k]).all() and close(ref[:, k], got[:, j]).all():
                    pairs.append((columns[j], columns[k]))
        if pairs:
            return {
                "cause": "swapped columns",
                "pairs": pairs,
                "detail": "; ".join(f"'{a}' and '{b}' hold each other's values" for a, b in pairs),
            }
        before = step.get("input")
        numeric_input = before is not None and before.shape == ref.shape and before.dtype != object
        if numeric_input and all(close(before[:, j].astype(np.float64), got[:, j]).all() for j in bad):
            return {
                "cause": "not applied",
                "detail": "the output equals the step's input: the step is missing",
            }
    categories = getattr(step["estimator"], "categories_", None)
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
            return {
                "cause": "category order",
                "reordered": reordered,
                "detail": "each category lands in another category's one-hot slot",
            }
    relabelled = [j for j in bad if _is_relabelling(ref[:, j], got[:, j])]
    if relabelled and len(relabelled) == len(bad):
        labels = column_labels(step)
        names = list(dict.fromkeys(labels[j].split("=", 1)[0] for j in relabelled))
        return {
            "cause": "category order",
            "reordered": names,
            "detail": "each category's code is another category's (ordinal codes permuted)",
        }
    scale = np.abs(ref[:, bad]) + 1e-12
    with np.errstate(invalid="ignore"):
        relative = float(np.nanmax(np.abs(ref[:, bad] - got[:, bad]) / np.maximum(scale, 1e-3)))
    if relative < 1e-2:
        return {
            "cause": "precision",
            "detail": f"small relative differences (max {relative:.2g}): rounded constants",
        }
    if step["kind"] == "model":
        return {"cause": "values", "detail": "the estimator's output differs though its input matches"}
    return {"cause": "values", "detail": "values differ"}


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


# --- restoring one step's output, column by column ----------------------------------------------------


def downstream(model: onnx.ModelProto, tensor: str, elem: int) -> onnx.ModelProto:
    """``model`` with ``tensor`` fed from outside: its producer (and whatever only fed that) cut."""
    part = onnx.ModelProto.FromString(model.SerializeToString())
    keep = [n for n in part.graph.node if tensor not in n.output]
    del part.graph.node[:]
    part.graph.node.extend(keep)
    part.graph.input.append(onnx.helper.make_tensor_value_info(tensor, elem, None))
    prune_unused(part)
    return part


def restore_effect(
    model: onnx.ModelProto,
    step: dict,
    got: np.ndarray,
    feeds: dict,
    reference: np.ndarray,
    positive_index: int,
    threshold: float,
) -> list[dict]:
    """Per input feature of a divergent step: max diff and flips left when only that feature's
    columns of the step output are replaced by scikit-learn's values (and for all at once)."""
    sess = session(downstream(model, step["tensor"], step["elem"]))
    wanted = {i.name for i in sess.get_inputs()}
    labels = column_labels(step)
    ref = step["value"]
    groups: dict[str, list[int]] = {}
    for j, label in enumerate(labels):
        groups.setdefault(label.split("=", 1)[0], []).append(j)

    def run(patched: np.ndarray) -> dict:
        feed = {k: v for k, v in feeds.items() if k in wanted}
        feed[step["tensor"]] = patched.astype(np.float32 if ref.dtype != object else object)
        p = sess.run(["probabilities"], feed)[0][:, positive_index].astype(np.float64)
        diff = np.abs(p - reference)
        flips = int(((p >= threshold) != (reference >= threshold)).sum())
        return {"max_abs_diff": float(diff.max()), "flipped": flips}

    got = np.asarray(got).reshape(ref.shape)
    results = [{"feature": "(none restored)", **run(got.copy())}]
    for feature, cols in groups.items():
        patched = got.copy()
        patched[:, cols] = ref[:, cols]
        results.append({"feature": feature, **run(patched)})
    results.append({"feature": "(all columns of the step)", **run(ref.copy())})
    return results


# --- static checks of the graph ------------------------------------------------------------------------


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


def nodes_between(model: onnx.ModelProto, inputs: list[str], outputs: list[str]) -> set[str]:
    """Names of the nodes that compute ``outputs`` from ``inputs``."""
    producers = {out: node for node in model.graph.node for out in node.output}
    seen, todo, names = set(), list(outputs), set()
    while todo:
        name = todo.pop()
        if name in seen or name in inputs:
            continue
        seen.add(name)
        node = producers.get(name)
        if node is not None:
            names.add(node.name or node.op_type)
            todo += list(node.input)
    return names


# --- INT8 against FP32 ----------------------------------------------------------------------------------


def revert_node(int8: onnx.ModelProto, fp32: onnx.ModelProto, fp32_node: onnx.NodeProto) -> onnx.ModelProto:
    """``int8`` with the FP32 ``fp32_node`` put back in place of whatever computes its output."""
    model = onnx.ModelProto.FromString(int8.SerializeToString())
    target = fp32_node.output[0]
    keep = [n for n in model.graph.node if target not in n.output]
    position = len(keep)
    for i, node in enumerate(model.graph.node):
        if target in node.output:
            position = min(position, i)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    model.graph.node.insert(min(position, len(keep)), fp32_node)
    present = {i.name for i in model.graph.initializer}
    for init in fp32.graph.initializer:
        if init.name in fp32_node.input and init.name not in present:
            model.graph.initializer.append(init)
    prune_unused(model)
    return graph_order(model)


def int8_findings(
    int8: onnx.ModelProto,
    fp32: onnx.ModelProto,
    feeds: dict,
    reference: np.ndarray,
    positive_index: int,
    threshold: float,
    split_nodes: Collection[str] = (),
) -> tuple[list[dict], list[dict]]:
    """Foreign nodes in the INT8 graph, and per quantized FP32 node the drift left when that node
    alone is put back to FP32 (rows scored one at a time, as the gate scores them). ``split_nodes``
    are the nodes the quantize stage's block split added (quantize_report.json's split_plan): not
    foreign."""
    findings = []
    known = {n.name for n in fp32.graph.node} | set(split_nodes)
    for node in int8.graph.node:
        if node.name in known or node.op_type in QUANTIZATION_OPS:
            continue
        findings.append(
            {
                "kind": "int8",
                "step": "int8 graph",
                "cause": "foreign node",
                "node": node.name or node.op_type,
                "message": f"INT8 graph has a {node.op_type} node writing {list(node.output)} that is "
                "neither in the FP32 graph nor made by quantization",
            }
        )
    producers = {out: node for node in int8.graph.node for out in node.output}
    drift = []
    base = _alone(int8, feeds, positive_index)
    base_diff = float(np.abs(base - reference).max())
    for node in fp32.graph.node:
        if node.op_type not in ("MatMul", "Gemm") or producers.get(node.output[0]) is None:
            continue
        if (
            producers[node.output[0]].op_type == node.op_type
            and producers[node.output[0]].input[1] == node.input[1]
        ):
            continue  # not quantized
        try:
            p = _alone(revert_node(int8, fp32, node), feeds, positive_index)
        except Exception:
            drift.append({"node": node.name, "max_abs_diff_if_fp32": None})
            continue
        flips = int(((p >= threshold) != (reference >= threshold)).sum())
        drift.append(
            {
                "node": node.name,
                "max_abs_diff_if_fp32": float(np.abs(p - reference).max()),
                "flipped_if_fp32": flips,
            }
        )
    drift.sort(key=lambda d: d["max_abs_diff_if_fp32"] if d["max_abs_diff_if_fp32"] is not None else 1.0)
    for d in drift:
        if d["max_abs_diff_if_fp32"] is not None and d["max_abs_diff_if_fp32"] < 0.5 * base_diff:
            findings.append(
                {
                    "kind": "int8",
                    "step": "int8 graph",
                    "cause": "quantized node",
                    "node": d["node"],
                    "message": f"quantized node '{d['node']}' drives the INT8 drift: keeping it FP32 "
                    f"brings the max diff {base_diff:.3g} -> {d['max_abs_diff_if_fp32']:.3g} "
                    f"({d['flipped_if_fp32']} flipped) on the examined rows",
                }
            )
    return findings, drift


def _alone(model: onnx.ModelProto, feeds: dict, positive_index: int) -> np.ndarray:
    sess = session(model)
    rows = len(next(iter(feeds.values())))
    out = [sess.run(["probabilities"], {k: v[i : i + 1] for k, v in feeds.items()})[0] for i in range(rows)]
    return np.concatenate(out)[:, positive_index].astype(np.float64)


# --- the whole diagnosis ----------------------------------------------------------------------------------


def contract_findings(
    metadata: dict, threshold: float, reference: np.ndarray, backend: np.ndarray
) -> list[dict]:
    found = []
    if metadata["threshold"] != threshold:
        found.append(
            {
                "kind": "contract",
                "step": "onnx_metadata.json",
                "cause": "threshold",
                "message": f"onnx_metadata.json threshold {metadata['threshold']!r} differs from the trained "
                f"threshold {threshold!r}: decisions move, probabilities do not",
            }
        )
    pointed = metadata["class_order"][metadata["positive_class_index"]]
    other = float(np.abs((1.0 - backend) - reference).max())
    if pointed != metadata["positive_label"] or other <= MATCH < float(np.abs(backend - reference).max()):
        found.append(
            {
                "kind": "contract",
                "step": "onnx_metadata.json",
                "cause": "positive class column",
                "message": f"positive_class_index {metadata['positive_class_index']} reads the column of "
                f"class {pointed!r}, not the positive label {metadata['positive_label']!r}"
                + (" (the backend's p equals 1 - p_sklearn)" if other <= MATCH else ""),
            }
        )
    return found


def diagnose(
    pipeline,
    model_bytes: bytes,
    X: pd.DataFrame,
    records: list[dict],
    features: dict,
    metadata: dict,
    reference: np.ndarray,
    backend: np.ndarray,
    threshold: float,
    fp32_bytes: bytes | None = None,
    tolerance: float = 1e-4,
    min_agreement: float = 1.0,
    max_rows: int = 200,
    split_nodes: Collection[str] = (),
) -> dict:
    """The ``diagnosis`` block of a backend in parity_report.json (see the module docstring).

    ``X`` is the model-input frame scikit-learn scores and ``records`` the same rows raw (what the
    encoder turns into the ONNX inputs); ``reference``/``backend`` are the positive probabilities the
    gate compared on them;
    ``fp32_bytes`` is given for an INT8 backend, whose graph is then compared with FP32's;
    ``tolerance`` and ``min_agreement`` are the backend's tolerances: the model step diverges beyond
    the max diff, and INT8's quantized nodes are named only when INT8 fails them; ``split_nodes``
    are the INT8 nodes the quantize stage's block split added (its report's split_plan).
    """
    rows = pick_rows(reference, backend, threshold, max_rows)
    findings = contract_findings(metadata, threshold, reference[rows], backend[rows])
    model = onnx.ModelProto.FromString(model_bytes)
    sub = X.iloc[rows]
    feeds = Encoder(features).encode([records[i] for i in rows])
    positive = list(pipeline.classes_).index(1)
    ref_p = reference[rows]
    steps, compared = sklearn_steps(pipeline, sub), []
    try:
        attach_tensors(steps, onnx_step_tensors(pipeline, features, model), features)
    except Exception as exc:
        return {
            "rows_examined": len(rows),
            "findings": findings,
            "steps": [],
            "note": f"no step comparison: {type(exc).__name__}: {exc}",
        }
    produced = {out for node in model.graph.node for out in node.output} | {i.name for i in model.graph.input}
    available = {s["tensor"]: s["elem"] for s in steps if s["tensor"] in produced}
    values = dict(
        zip(available, session(with_outputs(model, available)).run(list(available), feeds), strict=True)
    )
    divergent_branches: set[str] = set()
    first = None
    for step in steps:
        if step["tensor"] not in values:
            compared.append({"step": step["step"], "compared": False})
            continue
        diff = compare_step(step, values[step["tensor"]])
        compared.append({"step": step["step"], "compared": True, "matches": diff is None})
        if diff is None:
            continue
        upstream = step["branch"] in divergent_branches or (
            step["kind"] in ("concat", "model") and divergent_branches
        )
        if step["kind"] == "model" and first is not None:
            upstream = True
        if upstream:
            continue  # follows from an earlier divergence
        if step["kind"] == "model" and np.abs(backend[rows] - ref_p).max() <= tolerance:
            continue  # judged as the gate judges it: rows scored one at a time
        divergent_branches.add(step["branch"] or step["step"])
        first = first or step["step"]
        finding = step_finding(step, diff)
        effect = []
        if step["kind"] != "model" and step["value"].dtype != object:
            effect = restore_effect(
                model, step, values[step["tensor"]], feeds, ref_p, positive, metadata["threshold"]
            )
        if effect:
            finding["restore"] = effect
            drivers = driving_features(effect)
            if drivers:
                finding["drivers"] = [d["feature"] for d in drivers]
                base = effect[0]
                finding["message"] += "; driven by " + ", ".join(
                    f"'{d['feature']}' (restoring it alone: {base['flipped']} -> {d['flipped']} flipped, "
                    f"max diff {base['max_abs_diff']:.2g} -> {d['max_abs_diff']:.2g})"
                    for d in drivers[:3]
                )
        findings.append(finding)
    findings += swap_confirmations(findings, model, feeds, ref_p, positive)
    for node in float16_nodes(model):
        step_name = next(
            (s["step"] for s in steps if s["tensor"] in node["outputs"] and s["kind"] != "select"),
            owning_step(model, steps, node["node"]),
        )
        findings.append(
            {
                "kind": "precision",
                "step": step_name,
                "cause": "float16 weights",
                "node": node["node"],
                "message": f"node '{node['node']}' ({node['op']}) of step {step_name} holds {node['values']} "
                "float constants that are all exact float16 numbers: its weights were rounded to float16",
            }
        )
    drift = None
    if fp32_bytes is not None and fp32_bytes != model_bytes:
        fp32 = onnx.ModelProto.FromString(fp32_bytes)
        int8_found, drift = int8_findings(
            model, fp32, feeds, ref_p, positive, metadata["threshold"], split_nodes
        )
        agreement = float(((backend >= metadata["threshold"]) == (reference >= threshold)).mean())
        failing = float(np.abs(backend - reference).max()) > tolerance or agreement < min_agreement
        # Quantized nodes always move probabilities a little: name them only when INT8 fails.
        findings += [f for f in int8_found if f["cause"] != "quantized node" or failing]
    result = {
        "rows_examined": len(rows),
        "first_divergent_step": first,
        "findings": findings,
        "steps": compared,
    }
    if drift is not None:
        result["int8_nodes"] = drift
    return result


def driving_features(effect: list[dict]) -> list[dict]:
    """Features whose restore alone removes at least a quarter of the flips (or, with no flips,
    of the max diff), most effective first."""
    base, singles = effect[0], effect[1:-1]
    if base["flipped"]:
        found = [e for e in singles if e["flipped"] <= 0.75 * base["flipped"]]
        return sorted(found, key=lambda e: (e["flipped"], e["max_abs_diff"]))
    found = [e for e in singles if e["max_abs_diff"] <= 0.75 * base["max_abs_diff"]]
    return sorted(found, key=lambda e: e["max_abs_diff"])


def owning_step(model: onnx.ModelProto, steps: list[dict], node_name: str) -> str:
    """The first step whose ONNX computation includes ``node_name``."""
    previous: list[str] = [i.name for i in model.graph.input]
    for step in steps:
        if not step["tensor"]:
            continue
        if node_name in nodes_between(model, previous, [step["tensor"]]):
            return step["step"]
        if step["kind"] in ("concat",):
            previous = [step["tensor"]]
    return steps[-1]["step"]


def step_finding(step: dict, diff: dict) -> dict:
    """A finding for a divergent step, with its plain-words message."""
    inputs = diff.get("input_columns") or []
    cause = diff["cause"]
    if cause == "swapped columns":
        message = "; ".join(f"numeric inputs '{a}' and '{b}' look swapped" for a, b in diff["pairs"])
        message = f"step {step['step']} differs: {message}"
    elif cause == "category order":
        cols = ", ".join(f"'{c}'" for c in diff["reordered"])
        plural = "s" * (len(diff["reordered"]) > 1)
        message = f"step {step['step']} differs for column{plural} {cols}: category order"
    else:
        cols = ", ".join(f"'{c}'" for c in inputs[:6]) + (" ..." if len(inputs) > 6 else "")
        where = f" for column{'s' * (len(inputs) > 1)} {cols}" if cols else ""
        message = f"step {step['step']} differs{where}: {diff['detail']}"
    return {
        "kind": "step",
        "step": step["step"],
        "cause": cause,
        "columns": inputs,
        "message": message,
        **{k: v for k, v in diff.items() if k in ("max_abs_diff", "pairs", "reordered")},
    }


def swap_confirmations(
    findings: list[dict], model: onnx.ModelProto, feeds: dict, ref_p: np.ndarray, positive: int
) -> list[dict]:
    """For each suspected swap, feed the two inputs crossed: if parity comes back, say so."""
    out = []
    sess = None
    for finding in findings:
        for a, b in finding.get("pairs", []):
            if a not in feeds or b not in feeds:
                continue
            sess = sess or session(model)
            crossed = {**feeds, a: feeds[b], b: feeds[a]}
            p = sess.run(["probabilities"], crossed)[0][:, positive]
            diff = float(np.abs(p - ref_p).max())
            if diff <= MATCH:
                out.append(
                    {
                        "kind": "feature",
                        "step": finding["step"],
                        "cause": "swapped inputs",
                        "columns": [a, b],
                        "message": f"numeric inputs '{a}' and '{b}' look swapped: feeding them crossed "
                        f"restores parity (max diff {diff:.2g})",
                    }
                )
    return out


def log_lines(diagnosis: dict) -> list[str]:
    """The plain-words lines for the stage log."""
    return [f["message"] for f in diagnosis.get("findings", [])]

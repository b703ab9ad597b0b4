"""The whole diagnosis of one backend: pick the rows, check the contract's decision fields, compare
the steps in data-flow order, confirm suspected swaps, look for rounded weights, and for INT8
compare the graph with FP32's."""

from __future__ import annotations

import numpy as np
import onnx

from onnxship.contract.encode import Encoder
from onnxship.convert.graph import nodes_between
from onnxship.verify.diagnose import messages
from onnxship.verify.diagnose.heuristics import MATCH, compare_step, driving_features, float16_nodes
from onnxship.verify.diagnose.int8 import int8_findings
from onnxship.verify.diagnose.records import DiagnosisInput, Divergence, Finding, Step
from onnxship.verify.diagnose.restore import Examined, restore_effect, swap_confirmations
from onnxship.verify.diagnose.steps import sklearn_steps
from onnxship.verify.diagnose.tensors import attach_tensors, onnx_step_tensors, tensor_values
from onnxship.verify.metadata_check import check_metadata


def diagnose(subject: DiagnosisInput) -> dict:
    """The ``diagnosis`` block of a backend in parity_report.json (see the package docstring)."""
    picked = pick_rows(subject.reference, subject.backend, subject.threshold, subject.max_rows)
    contract = subject.contract
    findings = contract_findings(
        contract.metadata, subject.threshold, subject.reference[picked], subject.backend[picked]
    )
    encoder = Encoder(contract.features)
    rows = Examined(
        model=onnx.ModelProto.FromString(contract.model),
        feeds=encoder.encode([subject.rows[i] for i in picked]),
        layout=encoder.layout,
        reference=subject.reference[picked],
        backend=subject.backend[picked],
        positive=subject.positive_column,
        threshold=contract.metadata["threshold"],
    )
    steps = sklearn_steps(subject.pipeline, subject.frame.iloc[picked])
    try:
        tensors = onnx_step_tensors(subject.pipeline, contract.features, rows.model)
        attach_tensors(steps, tensors, contract.features)
    except Exception as exc:
        return {
            "rows_examined": len(picked),
            "findings": [f.to_dict() for f in findings],
            "steps": [],
            "note": messages.no_step_comparison(exc),
        }
    values = tensor_values(rows.model, steps, rows.feeds)
    first, divergent, compared = compare_steps(steps, values, rows, subject)
    findings += divergent
    findings += swap_confirmations(findings, rows)
    findings += float16_findings(rows.model, steps)
    drift = None
    if subject.fp32_model is not None and subject.fp32_model != contract.model:
        fp32 = onnx.ModelProto.FromString(subject.fp32_model)
        int8_found, drift = int8_findings(rows.model, fp32, rows, subject.split_nodes)
        # Quantized nodes always move probabilities a little: name them only when INT8 fails.
        findings += [f for f in int8_found if f.cause != "quantized node" or fails(subject)]
    result = {
        "rows_examined": len(picked),
        "first_divergent_step": first,
        "findings": [f.to_dict() for f in findings],
        "steps": compared,
    }
    if drift is not None:
        result["int8_nodes"] = drift
    return result


def log_lines(diagnosis: dict) -> list[str]:
    """The plain-words lines for the stage log."""
    return [f["message"] for f in diagnosis.get("findings", [])]


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


def fails(subject: DiagnosisInput) -> bool:
    """True if the backend fails its tolerances on all the gate's rows."""
    decisions = subject.backend >= subject.contract.metadata["threshold"]
    agreement = float((decisions == (subject.reference >= subject.threshold)).mean())
    too_far = float(np.abs(subject.backend - subject.reference).max()) > subject.max_abs_diff
    return too_far or agreement < subject.min_agreement


def contract_findings(
    metadata: dict, threshold: float, reference: np.ndarray, backend: np.ndarray
) -> list[Finding]:
    """The decision fields of onnx_metadata.json that are wrong, as checked by the gate, plus a
    backend whose probabilities are measured to be 1 - scikit-learn's."""
    check = check_metadata(metadata, threshold)
    found = []
    if check.threshold_differs:
        message = messages.threshold_differs(check)
        found.append(Finding("contract", "onnx_metadata.json", "threshold", message))
    complement = float(np.abs((1.0 - backend) - reference).max())
    if check.wrong_column or complement <= MATCH < float(np.abs(backend - reference).max()):
        message = messages.positive_column(check, complement <= MATCH)
        found.append(Finding("contract", "onnx_metadata.json", "positive class column", message))
    return found


def compare_steps(
    steps: list[Step], values: dict, rows: Examined, subject: DiagnosisInput
) -> tuple[str | None, list[Finding], list[dict]]:
    """The first divergent step, a finding per step that diverges on its own (not because an
    earlier step did), and per step whether it was compared and matched."""
    findings: list[Finding] = []
    compared: list[dict] = []
    divergent: set[str] = set()  # branches (or steps) already found divergent
    first = None
    for step in steps:
        if step.tensor not in values:
            compared.append({"step": step.name, "compared": False})
            continue
        diff = compare_step(step, values[step.tensor])
        compared.append({"step": step.name, "compared": True, "matches": diff is None})
        if diff is None or follows(step, divergent, first):
            continue
        if step.kind == "model" and np.abs(rows.backend - rows.reference).max() <= subject.max_abs_diff:
            continue  # judged as the gate judges it: rows scored one at a time
        divergent.add(step.branch or step.name)
        first = first or step.name
        findings.append(step_finding(step, diff, rows, values[step.tensor]))
    return first, findings, compared


def follows(step: Step, divergent: set[str], first: str | None) -> bool:
    """True if the step's divergence follows from an earlier one: its own branch's, or for the
    ColumnTransformer output and the model any earlier divergence."""
    if step.kind == "model" and first is not None:
        return True
    return step.branch in divergent or (step.kind in ("concat", "model") and bool(divergent))


def step_finding(step: Step, diff: Divergence, rows: Examined, got: np.ndarray) -> Finding:
    """A finding for a divergent step; for a numeric preprocessing step also what restoring each
    input feature's columns to scikit-learn's values does, and the features that drive it."""
    finding = Finding(
        kind="step",
        step=step.name,
        cause=diff.cause,
        message=messages.step_differs(step.name, diff),
        columns=diff.input_columns or [],
        max_abs_diff=diff.max_abs_diff,
        pairs=diff.pairs,
        reordered=diff.reordered,
    )
    if step.kind == "model" or step.value.dtype == object:
        return finding
    effect = restore_effect(rows, step, got)
    if effect:
        finding.restore = effect
        drivers = driving_features(effect)
        if drivers:
            finding.drivers = [d["feature"] for d in drivers]
            finding.message += messages.driven_by(effect[0], drivers)
    return finding


def float16_findings(model: onnx.ModelProto, steps: list[Step]) -> list[Finding]:
    """Nodes whose weights were rounded to float16, each named with the step that owns it."""
    found = []
    for node in float16_nodes(model):
        # The owning step is searched only when no step's tensor is the node's output.
        step = next(
            (s.name for s in steps if s.tensor in node["outputs"] and s.kind != "select"), None
        ) or owning_step(model, steps, node["node"])
        message = messages.float16_weights(node, step)
        found.append(Finding("precision", step, "float16 weights", message, node=node["node"]))
    return found


def owning_step(model: onnx.ModelProto, steps: list[Step], node_name: str) -> str:
    """The first step whose ONNX computation includes ``node_name``."""
    previous: list[str] = [i.name for i in model.graph.input]
    for step in steps:
        if not step.tensor:
            continue
        if node_name in nodes_between(model, previous, [step.tensor]):
            return step.name
        if step.kind == "concat":
            previous = [step.tensor]
    return steps[-1].name

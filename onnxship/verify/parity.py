"""Numerical agreement of a backend with scikit-learn, and the pass/fail verdict.

scikit-learn is the reference: the model the user validated, with the threshold train tuned.
Each ONNX backend is scored exactly as it ships: its contract files loaded with every check a client
makes (``onnxship.contract.artifacts``), raw rows (the strings a CSV gives) encoded by the one encoder
and scored by the standalone ``Scorer``. So a wrong threshold, class column, input mapping or
contract file shows up here, and what passes here is what a service runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from onnxship.contract.artifacts import Contract
from onnxship.contract.encode import InvalidRecord
from onnxship.convert.edge_rows import edge_rows as edge_rows  # the gate's edge rows, re-exported
from onnxship.core.errors import UserError
from onnxship.core.params import ParityParams
from onnxship.serve.scorer import Scorer
from onnxship.train import table
from onnxship.train.table import Roles
from onnxship.verify.diagnose.records import DiagnosisInput
from onnxship.verify.diagnose.run import diagnose
from onnxship.verify.int8_families import Scored, check_families
from onnxship.verify.label_check import label_check
from onnxship.verify.metadata_check import check_metadata


def compare(
    reference: np.ndarray, backend: np.ndarray, thresholds: Thresholds, cases: list[str], max_listed: int = 0
) -> dict:
    """Differences and decision flips of ``backend`` against ``reference`` probabilities; the
    ``max_listed`` flips closest to the threshold are listed with their ``cases``."""
    diff = np.abs(reference - backend)
    ref_decision = reference >= thresholds.reference
    flipped = np.flatnonzero(ref_decision != (backend >= thresholds.backend))
    distance = np.abs(reference - thresholds.reference)
    order = flipped[np.argsort(distance[flipped], kind="stable")]
    return {
        "rows": len(reference),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "abs_diff_quantiles": {q: float(np.quantile(diff, float(q))) for q in ("0.5", "0.9", "0.99")},
        "abs_diff_histogram": diff_histogram(diff),
        "agreement": float(1.0 - len(flipped) / len(reference)),
        "flipped": len(flipped),
        "flipped_within_margin": int((distance[flipped] <= thresholds.margin).sum()),
        "flipped_rows": [
            {
                "row": int(i),
                "case": cases[i],
                "p_sklearn": float(reference[i]),
                "p_backend": float(backend[i]),
                "distance_to_threshold": float(distance[i]),
            }
            for i in order[:max_listed]
        ],
    }


@dataclass(frozen=True)
class Thresholds:
    """How each side decides: scikit-learn at train's threshold, the backend at its contract's;
    a flip within ``margin`` of scikit-learn's threshold is counted as near it."""

    reference: float
    backend: float
    margin: float


HEADLINE = ("rows", "max_abs_diff", "agreement", "flipped")
DIFF_BINS = [0.0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]


def diff_histogram(diff: np.ndarray) -> list[dict]:
    """Row counts of |p_sklearn - p_backend| per decade: where the disagreement mass sits."""
    counts, _ = np.histogram(np.clip(diff, 0.0, 1.0), bins=DIFF_BINS)
    return [
        {"from": lo, "to": hi, "rows": int(n)}
        for lo, hi, n in zip(DIFF_BINS, DIFF_BINS[1:], counts, strict=False)
    ]


def verdict(comparison: dict, max_abs_diff: float, min_agreement: float) -> list[str]:
    """Why the backend fails its tolerances; empty if it passes."""
    reasons = []
    if comparison["max_abs_diff"] > max_abs_diff:
        reasons.append(
            f"max |p_sklearn - p_backend| {comparison['max_abs_diff']:.3g} > tolerance {max_abs_diff:.3g}"
        )
    if comparison["agreement"] < min_agreement:
        reasons.append(
            f"decision agreement {comparison['agreement']:.4%} < {min_agreement:.4%} "
            f"({comparison['flipped']} flipped, {comparison['flipped_within_margin']} within the margin)"
        )
    return reasons


@dataclass(frozen=True)
class GateInput:
    """What the gate judges.

    ``rows`` are raw records (dicts of the strings a CSV gives): the first ``n_test`` are held-out
    rows, then edge rows, then the last ``n_boundary`` are boundary rows (onnxship.convert.boundary_rows,
    described by ``boundary``); ``cases`` names each row. ``backends`` maps each ONNX backend to its
    loaded contract, or to the reason a client refuses its files. ``problems`` are faults found
    outside the contract files (e.g. a threshold.txt that train did not write), per backend.
    ``split_plan`` is quantize_report.json's: the nodes the INT8 block split added, which the
    diagnosis must not take for foreign nodes.
    """

    pipeline: Any
    threshold: float
    roles: Roles
    rows: list[dict]
    cases: list[str]
    n_test: int
    backends: dict[str, Contract | str]
    params: ParityParams
    problems: dict[str, list[str]] = field(default_factory=dict)
    split_plan: list[dict] = field(default_factory=list)
    n_boundary: int = 0
    boundary: dict = field(default_factory=dict)
    positive_column: int = 1  # the pipeline's predict_proba column of the positive class


def run_gate(gate: GateInput) -> tuple[dict, dict[str, np.ndarray]]:
    """The parity gate: score every row with the scikit-learn pipeline and with each ONNX backend
    through the shipped scorer, and judge each backend against its tolerances.

    Every row is scored alone (batch 1), as an online service scores it: dynamic INT8 quantizes
    activations with a range taken from the whole batch, so in a batch one far-out row changes its
    neighbours' results. The held-out rows are also scored as one batch, which must meet the same
    tolerances.

    Returns the report and each backend's per-row probabilities (scored alone), scikit-learn's too.
    """
    frame = table.features(pd.DataFrame.from_records(gate.rows), gate.roles)
    reference = gate.pipeline.predict_proba(frame)[:, gate.positive_column]
    params = gate.params
    results, probabilities = {}, {"sklearn": reference}
    scored: dict[str, tuple] = {}  # by model sha256: a backend shipping the same file as another
    for name in gate.backends:
        result, alone = judge_backend(gate, name, reference, scored)
        results[name] = result
        if alone is None:
            continue
        probabilities[name] = alone
        if params.diagnose == "always" or (params.diagnose == "on_failure" and not result["passed"]):
            result["diagnosis"] = diagnosis(gate, name, frame, reference, alone)
    report = summarize(
        reference[: gate.n_test],
        gate.threshold,
        params.margin,
        len(reference) - gate.n_test - gate.n_boundary,
        results,
        params.int8_on_failure,
    )
    report["rows"]["boundary"] = gate.n_boundary
    if gate.boundary:
        report["boundary"] = gate.boundary
    return report, probabilities


def judge_backend(
    gate: GateInput, name: str, reference: np.ndarray, scored: dict[str, tuple] | None = None
) -> tuple[dict, np.ndarray | None]:
    """Backend ``name``'s section of the report (all rows, the held-out and edge rows apart, the
    held-out rows as one batch) and its probabilities row by row (None if it was not scored).

    ``scored`` {model sha256: (alone, batched)} holds what earlier backends' files scored: an INT8
    file with nothing to quantize is model.onnx byte for byte, and the same bytes through the same
    scorer give the same probabilities, so they are judged again (against this backend's
    tolerances) but not scored twice; ``scored_like`` in the report names the backend reused."""
    tolerance = getattr(gate.params.tolerances, name).model_dump()
    problems = list(gate.problems.get(name, []))
    contract = gate.backends[name]
    if isinstance(contract, str):
        return refused(tolerance, [*problems, f"a client refuses its files: {contract}"]), None
    scorer = Scorer.from_contract(contract)
    scored = {} if scored is None else scored
    key = hashlib.sha256(contract.model).hexdigest()
    if key in scored:
        alone, batched, like = scored[key]
    else:
        try:
            alone = np.array([scorer.score_record(row)[0] for row in gate.rows])
            batched = scorer.score_records(gate.rows[: gate.n_test])[0]
        except InvalidRecord as exc:
            reason = f"the scorer refuses a row the model was fitted on: {exc}"
            return refused(tolerance, [*problems, reason]), None
        like = None
        scored[key] = (alone, batched, name)
    result = check_backend(gate, reference, alone, contract.metadata, tolerance, problems)
    if like is not None:
        result["scored_like"] = like
    thresholds = Thresholds(gate.threshold, scorer.threshold, gate.params.margin)
    n_test, n_edge_end, n_rows = gate.n_test, len(gate.rows) - gate.n_boundary, len(gate.rows)
    parts = {
        "test_rows": slice(0, n_test),
        "edge_rows": slice(n_test, n_edge_end),
        "boundary_rows": slice(n_edge_end, n_rows),
    }
    for key, rows in parts.items():
        if rows.start == rows.stop:
            continue  # no edge rows (parity.edge_rows: false), no trees (no boundary rows)
        part = compare(reference[rows], alone[rows], thresholds, gate.cases[rows])
        result[key] = {k: part[k] for k in HEADLINE}
    result["reasons"] += boundary_reasons(gate, reference - alone, tolerance)
    batch = compare(reference[:n_test], batched, thresholds, gate.cases[:n_test])

    def judge(probability: np.ndarray, rows: slice) -> tuple[dict, list[str]]:
        part = compare(reference[rows], probability, thresholds, gate.cases[rows])
        return part, verdict(part, tolerance["max_abs_diff"], tolerance["min_agreement"])

    result["test_rows_one_batch"] = {k: batch[k] for k in HEADLINE}
    batch_reasons = verdict(batch, tolerance["max_abs_diff"], tolerance["min_agreement"])
    result["reasons"] += [f"scored as one batch of {n_test} rows: {r}" for r in batch_reasons]
    labels = label_check(scorer, gate.rows, gate.cases, gate.pipeline.classes_)
    result["graph_label"] = {k: labels[k] for k in ("rows", "mismatched", "mismatched_rows")}
    result["reasons"] += labels["reasons"]
    if name == "int8":
        result["kernel_families"], failed = check_families(
            contract, gate.rows, n_test, Scored(alone, batched), judge
        )
        result["reasons"] += failed
    result["passed"] = not result["reasons"]
    return result, alone


def boundary_reasons(gate: GateInput, diff: np.ndarray, tolerance: dict) -> list[str]:
    """What failing boundary rows mean, naming the worst one: a tree split that ONNX decides
    differently from scikit-learn for a float32 value next to its threshold (``diff`` is
    p_sklearn - p_backend per row; the verdict on all rows already fails)."""
    if not gate.n_boundary:
        return []
    part = np.abs(diff[len(diff) - gate.n_boundary :])
    if part.max() <= tolerance["max_abs_diff"]:
        return []
    worst = len(diff) - gate.n_boundary + int(np.argmax(part))
    return [
        f"{int((part > tolerance['max_abs_diff']).sum())} of {gate.n_boundary} boundary rows differ, "
        f"worst {part.max():.3g} at '{gate.cases[worst]}': ONNX sends a float32 value next to a tree "
        "split threshold down the other branch (a threshold not exact in float32; export rounds them "
        "with onnxship.convert.thresholds)"
    ]


def check_backend(
    gate: GateInput,
    reference: np.ndarray,
    probability: np.ndarray,
    metadata: dict,
    tolerance: dict,
    problems: list[str],
) -> dict:
    """One backend's differences, flips and verdict on all the gate's rows.

    ``probability`` is what the backend gave when scored through the contract; ``problems`` are
    contract faults found elsewhere (e.g. a file hash that does not match the metadata).
    """
    reasons = list(problems)
    check = check_metadata(metadata, gate.threshold)
    if check.threshold_differs:
        reasons.append(f"metadata threshold {check.threshold!r} != trained threshold {gate.threshold!r}")
    if check.wrong_column:
        reasons.append(
            f"metadata positive_class_index {check.positive_class_index} points at class "
            f"{check.pointed!r}, not the positive label {check.positive_label!r}"
        )
    thresholds = Thresholds(gate.threshold, metadata["threshold"], gate.params.margin)
    result = compare(reference, probability, thresholds, gate.cases, gate.params.max_rows_listed)
    reasons += verdict(result, tolerance["max_abs_diff"], tolerance["min_agreement"])
    return {"passed": not reasons, "reasons": reasons, "tolerance": tolerance, **result}


def diagnosis(
    gate: GateInput, name: str, frame: pd.DataFrame, reference: np.ndarray, alone: np.ndarray
) -> dict:
    """Where backend ``name`` goes wrong (onnxship.verify.diagnose); INT8 is also compared with FP32."""
    contract = gate.backends[name]
    fp32 = gate.backends.get("onnx")
    assert isinstance(contract, Contract)  # a backend a client refuses is never scored
    tolerance = getattr(gate.params.tolerances, name)
    return diagnose(
        DiagnosisInput(
            pipeline=gate.pipeline,
            contract=contract,
            frame=frame,
            rows=gate.rows,
            reference=reference,
            backend=alone,
            threshold=gate.threshold,
            max_abs_diff=tolerance.max_abs_diff,
            min_agreement=tolerance.min_agreement,
            fp32_model=fp32.model if name != "onnx" and isinstance(fp32, Contract) else None,
            split_nodes=frozenset(node for split in gate.split_plan for node in split["nodes"]),
            positive_column=gate.positive_column,
        )
    )


def client_load(load: Callable[[], Contract]) -> Contract | str:
    """A backend as a client sees it: its contract if ``load`` accepts the files, else the reason."""
    try:
        return load()
    except UserError as exc:
        return str(exc)


def refused(tolerance: dict, reasons: list[str]) -> dict:
    """The report section of a backend that could not be scored: failed, with the reasons."""
    return {"passed": False, "reasons": reasons, "tolerance": tolerance, "refused": True}


def summarize(
    test_reference: np.ndarray,
    threshold: float,
    margin: float,
    edge_rows: int,
    backends: dict[str, dict],
    int8_on_failure: str,
) -> dict:
    """The whole report. INT8 failing its tolerances fails the gate only if the policy says so;
    otherwise INT8 is marked not deployable and the gate still passes on FP32."""
    for result in backends.values():
        result["deployable"] = result["passed"]
    binding = [r["passed"] for n, r in backends.items() if n != "int8" or int8_on_failure == "fail"]
    return {
        "passed": all(binding),
        "threshold": threshold,
        "margin": margin,
        "int8_on_failure": int8_on_failure,
        "rows": {"test": len(test_reference), "edge": edge_rows},
        "fragile_test_rows": fragility(test_reference, threshold, margin),
        "backends": backends,
    }


def fragility(reference: np.ndarray, threshold: float, margin: float) -> dict:
    """How many reference decisions sit on or near the threshold (ties are reported, not hidden)."""
    distance = np.abs(reference - threshold)
    return {
        "within_margin": int((distance <= margin).sum()),
        "ties": int((reference == threshold).sum()),
    }

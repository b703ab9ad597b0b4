"""Measuring a suspicion by feeding scikit-learn's values back into the ONNX graph: restore a
divergent step's output one input feature at a time, or feed two suspected inputs crossed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from onnxship.contract.layout import Layout
from onnxship.convert.graph import downstream
from onnxship.verify.diagnose import messages
from onnxship.verify.diagnose.heuristics import MATCH
from onnxship.verify.diagnose.records import Finding, Step
from onnxship.verify.diagnose.steps import column_labels, input_column
from onnxship.verify.diagnose.tensors import session


@dataclass(frozen=True)
class Examined:
    """The rows the diagnosis examines, as the ONNX graph takes them and as scikit-learn scored them.

    ``feeds`` are the encoded ONNX inputs (placed by ``layout``: per column in contract v1, packed in
    v2), ``reference`` scikit-learn's positive probabilities,
    ``backend`` the gate's (rows scored one at a time), ``positive`` the probability column of the
    positive class, ``threshold`` the contract's decision threshold.
    """

    model: onnx.ModelProto
    feeds: dict
    layout: Layout
    reference: np.ndarray
    backend: np.ndarray
    positive: int
    threshold: float

    def outcome(self, p: np.ndarray) -> dict:
        """Max diff and flipped decisions of probabilities ``p`` against scikit-learn's."""
        flips = int(((p >= self.threshold) != (self.reference >= self.threshold)).sum())
        return {"max_abs_diff": float(np.abs(p - self.reference).max()), "flipped": flips}


def restore_effect(rows: Examined, step: Step, got: np.ndarray) -> list[dict]:
    """Per input feature of a divergent step: max diff and flips left when only that feature's
    columns of the step output (``got`` in ONNX) are replaced by scikit-learn's values; first with
    none restored, last with all of them."""
    sess = session(downstream(rows.model, step.tensor or "", step.elem))
    wanted = {i.name for i in sess.get_inputs()}
    ref = step.value
    groups: dict[str, list[int]] = {}
    for j, label in enumerate(column_labels(step)):
        groups.setdefault(input_column(label), []).append(j)

    def run(patched: np.ndarray) -> dict:
        feed = {k: v for k, v in rows.feeds.items() if k in wanted}
        feed[step.tensor] = patched.astype(np.float32 if ref.dtype != object else object)
        p = sess.run(["probabilities"], feed)[0][:, rows.positive].astype(np.float64)
        return rows.outcome(p)

    got = np.asarray(got).reshape(ref.shape)
    results = [{"feature": "(none restored)", **run(got.copy())}]
    for feature, cols in groups.items():
        patched = got.copy()
        patched[:, cols] = ref[:, cols]
        results.append({"feature": feature, **run(patched)})
    results.append({"feature": "(all columns of the step)", **run(ref.copy())})
    return results


def swap_confirmations(findings: list[Finding], rows: Examined) -> list[Finding]:
    """For each suspected swap, feed the two inputs crossed: if parity comes back, say so."""
    out = []
    sess = None
    for finding in findings:
        for a, b in finding.pairs or []:
            if a not in rows.layout.names or b not in rows.layout.names:
                continue
            sess = sess or session(rows.model)
            crossed = rows.layout.crossed(rows.feeds, a, b)
            p = sess.run(["probabilities"], crossed)[0][:, rows.positive]
            diff = float(np.abs(p - rows.reference).max())
            if diff <= MATCH:
                message = messages.swap_confirmed(a, b, diff)
                out.append(Finding("feature", finding.step, "swapped inputs", message, columns=[a, b]))
    return out

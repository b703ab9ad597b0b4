"""The graph's own ``label`` output against the contract's JSON rule, on every row the gate scores.

Export rewrites ``label`` to apply ``p >= threshold`` (onnxship.convert.decision); a reader of the
graph alone then decides as every client of the JSON contract does. This check runs each backend
once on all the gate's rows, asking for both outputs, and compares the label with the rule applied
to the probabilities of the same run (so INT8's batch effects cannot blur it): one row that
differs fails the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from onnxship.convert.decision import LABEL_OUTPUT, Decision, graph_decisions
from onnxship.serve.scorer import Scorer

LISTED = 5  # mismatched rows named in the report


def label_check(scorer: Scorer, rows: list[dict], cases: Sequence[str], classes: Sequence[Any]) -> dict:
    """``{"rows", "mismatched", "mismatched_rows", "reasons"}`` for the graph's label on ``rows``;
    ``classes`` are the classifier's classes in probability-column order."""
    meta = scorer.metadata
    decision = Decision(
        threshold=scorer.threshold,
        positive_column=int(meta["positive_class_index"]),
        classes=list(classes),
        positive_label=meta["positive_label"],
        negative_label=meta["negative_label"],
    )
    if LABEL_OUTPUT not in {o.name for o in scorer.session.get_outputs()}:
        reasons = ["the graph has no label output: re-run the export stage (dvc repro)"]
        return {"rows": 0, "mismatched": 0, "mismatched_rows": [], "reasons": reasons}
    feeds = scorer.encoder.encode(rows)
    probabilities, labels = scorer.session.run([scorer.probability_output, LABEL_OUTPUT], feeds)
    p = probabilities[:, decision.positive_column].astype(np.float64)
    rule = scorer.decide(p)
    mismatched = np.flatnonzero(graph_decisions(np.asarray(labels), decision) != rule)
    listed = [
        {"row": int(i), "case": cases[i], "probability": float(p[i]), "label": _plain(labels[i])}
        for i in mismatched[:LISTED]
    ]
    reasons = []
    if len(mismatched):
        first = listed[0]
        reasons.append(
            f"the graph's label output disagrees with the rule p >= {scorer.threshold!r} on "
            f"{len(mismatched)} of {len(rows)} rows (first: {first['case']}, p {first['probability']!r}, "
            f"label {first['label']!r}): re-run the export stage (dvc repro)"
        )
    return {"rows": len(rows), "mismatched": len(mismatched), "mismatched_rows": listed, "reasons": reasons}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

"""Boundary rows: held-out rows moved onto the two float32 values that straddle a tree split.

A tree sends a row left or right by comparing one number with a threshold; ONNX compares in float32.
Held-out rows rarely hold the float32 value next to a threshold, so a threshold rounded the wrong way
(onnxship.convert.thresholds) passes a gate that scores only them. For each split of the shipped
trees on a raw numeric column, the gate scores a real held-out row that reaches that split, with the
column set to the float32 just below and the float32 just above the decision boundary
(``x <= t``: the largest float32 <= t and the next one up; ``x < t``: the smallest float32 >= t and
the one before it). Scikit-learn sends the two rows down different branches; so must ONNX.

Only the parity gate scores them: INT8 quantization leaves tree ensembles as they are (it quantizes
MatMul/Gemm), so quantize's search has nothing to learn from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from onnxship.convert.thresholds import directed_float32
from onnxship.convert.tree_nodes import Nodes, input_columns, tree_nodes
from onnxship.train import table
from onnxship.train.table import Roles


@dataclass(frozen=True)
class Boundary:
    """The boundary rows (raw records, as the CSV gives them), their case labels, and what was found:
    ``splits`` distinct (column, threshold) splits on traced columns, ``reached`` those a held-out
    row reaches, ``untraced`` model inputs that are no raw numeric column (their splits are skipped)."""

    rows: pd.DataFrame
    cases: list[str]
    summary: dict = field(default_factory=dict)


def boundary_rows(pipeline: Any, raw: pd.DataFrame, roles: Roles, max_rows: int) -> Boundary:
    """Two rows per split of ``pipeline``'s trees (at most ``max_rows`` rows), each built from the
    first row of ``raw`` (held-out rows, raw strings) that reaches that split.

    Splits are deduplicated per column and threshold. Beyond ``max_rows`` a deterministic sample is
    kept that covers every column before a second threshold of any column (seeded order per column).
    """
    model = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    trees = tree_nodes(model)
    columns = input_columns(pipeline, roles)
    if not trees or raw.empty:
        return Boundary(pd.DataFrame(columns=raw.columns), [], {"trees": len(trees)})
    inputs = model_inputs(pipeline, table.features(raw, roles))
    first: dict[tuple[str, str, float], int] = {}  # (column, op, threshold) -> first reaching row
    known: set[tuple[str, str, float]] = set()
    for nodes in trees:
        reach = first_reaching_row(nodes, inputs)
        for node in np.flatnonzero(~nodes.leaf):
            column = columns[nodes.feature[node]] if nodes.feature[node] < len(columns) else None
            if column is None:
                continue
            key = (column, nodes.op, float(nodes.threshold[node]))
            known.add(key)
            if reach[node] >= 0 and (key not in first or reach[node] < first[key]):
                first[key] = int(reach[node])
    chosen = sample(sorted(first), roles.features, max_rows // 2)
    rows, cases = [], []
    for column, op, threshold in chosen:
        for side, value in straddle(threshold, op):
            row = raw.iloc[first[(column, op, threshold)]].copy()
            row[column] = repr(float(value))
            rows.append(row)
            cases.append(f"boundary: {column} {op} {threshold:.9g}, {column} = {value:.9g} ({side})")
    summary = {
        "trees": len(trees),
        "splits": len(known),
        "reached": len(first),
        "scored": len(chosen),
        "untraced_inputs": sum(c is None for c in columns),
    }
    return Boundary(pd.DataFrame(rows, columns=raw.columns).reset_index(drop=True), cases, summary)


def straddle(threshold: float, op: str) -> list[tuple[str, np.float32]]:
    """The float32 just below and just above the decision boundary of ``x op threshold``; none if the
    boundary is at an infinity (HistGradientBoosting's split of missing values from the rest)."""
    if op == "<=":
        low = np.float32(directed_float32(np.array([threshold]), "down")[0])
        high = np.nextafter(low, np.float32(np.inf))
    else:
        high = np.float32(directed_float32(np.array([threshold]), "up")[0])
        low = np.nextafter(high, np.float32(-np.inf))
    if not (np.isfinite(low) and np.isfinite(high)):
        return []
    return [("below", low), ("above", high)]


def sample(keys: list[tuple[str, str, float]], order: list[str], count: int) -> list[tuple[str, str, float]]:
    """At most ``count`` of ``keys``: in a seeded random order within each column, round-robin over
    the columns in ``order``, so each column is covered before any column gets its second."""
    if len(keys) <= count:
        return keys
    rng = np.random.default_rng(0)
    by_column: dict[str, list] = {}
    for key in keys:
        by_column.setdefault(key[0], []).append(key)
    ranked = []
    for position, column in enumerate(c for c in order if c in by_column):
        mine = by_column[column]
        for rank, index in enumerate(rng.permutation(len(mine))):
            ranked.append((rank, position, mine[index]))
    return sorted(key for _, _, key in sorted(ranked)[:count])


def model_inputs(pipeline: Any, frame: pd.DataFrame) -> np.ndarray:
    """What the last step of ``pipeline`` receives for ``frame`` (the model input frame)."""
    steps = getattr(pipeline, "steps", [])
    if len(steps) <= 1:
        return frame.to_numpy()
    out = pipeline[:-1].transform(frame)
    return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)  # sparse too


def first_reaching_row(nodes: Nodes, inputs: np.ndarray) -> np.ndarray:
    """Per node, the index of the first row of ``inputs`` whose path goes through it (-1: none),
    following the tree as scikit-learn does (float32 inputs for scikit-learn trees, NaN to the
    side ``missing_left`` names)."""
    values = inputs.astype(np.float32) if nodes.float32 else inputs
    n = len(values)
    reach = np.full(len(nodes.feature), n, dtype=np.int64)
    at = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        here = at[active]
        np.minimum.at(reach, here, rows[active])
        split = ~nodes.leaf[here]
        moving = np.flatnonzero(active)[split]
        node = at[moving]
        x = values[moving, nodes.feature[node]].astype(np.float64)
        if nodes.op == "<=":
            left = np.where(np.isnan(x), nodes.missing_left[node], x <= nodes.threshold[node])
        else:
            left = np.where(np.isnan(x), nodes.missing_left[node], x < nodes.threshold[node])
        at[moving] = np.where(left, nodes.left[node], nodes.right[node])
        active[:] = False
        active[moving] = True
    reach[reach == n] = -1
    return reach

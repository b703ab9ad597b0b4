"""The diagnosis's records: what it is given, each pipeline step it compares, how a step diverges,
and what it finds. ``Finding.to_dict`` alone decides how a finding reads in parity_report.json."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import pandas as pd

from onnxship.contract.artifacts import Contract


@dataclass(frozen=True)
class DiagnosisInput:
    """One backend as the gate scored it, and what it was compared with.

    ``frame`` is the model-input frame scikit-learn scores and ``rows`` the same rows raw (what the
    encoder turns into the ONNX inputs); ``reference``/``backend`` are the positive probabilities the
    gate compared on them. ``fp32_model`` is given for an INT8 backend, whose graph is then compared
    with FP32's; ``split_nodes`` are the nodes the quantize stage added when it split a MatMul by
    input block (its report's ``split_plan``), which are neither FP32 nor foreign.
    ``max_abs_diff`` and ``min_agreement`` are the backend's tolerances: the model step
    diverges beyond the max diff, and INT8's quantized nodes are named only when INT8 fails them.
    """

    pipeline: Any
    contract: Contract
    frame: pd.DataFrame
    rows: list[dict]
    reference: np.ndarray
    backend: np.ndarray
    threshold: float
    max_abs_diff: float = 1e-4
    min_agreement: float = 1.0
    fp32_model: bytes | None = None
    split_nodes: frozenset[str] = frozenset()
    positive_column: int = 1  # the pipeline's predict_proba column of the positive class
    max_rows: int = 200


@dataclass
class Step:
    """One scikit-learn step's output on the examined rows, and the ONNX tensor that holds it.

    ``kind``: "select" (a ColumnTransformer branch's columns), "transform" (a step inside a branch),
    "concat" (the ColumnTransformer's output) or "model" (the probabilities).
    """

    name: str
    kind: str
    value: np.ndarray
    columns: list[str] | None
    estimator: Any
    branch: str | None
    input: np.ndarray | None = None  # what a "transform" step received
    tensor: str | None = None  # None: the ONNX graph has no tensor for this step
    elem: int = onnx.TensorProto.FLOAT


@dataclass
class Divergence:
    """How an ONNX tensor differs from its step's output.

    ``columns`` are the step's output columns that differ, ``input_columns`` the input columns they
    come from. ``max_abs_diff`` is None when the values are strings (or shapes differ) and NaN when
    no difference is finite (a value missing on one side only).
    """

    cause: str
    detail: str
    columns: list[str] | None = None
    input_columns: list[str] | None = None
    max_abs_diff: float | None = None
    pairs: list[tuple[str, str]] | None = None  # "swapped columns"
    reordered: list[str] | None = None  # "category order"


@dataclass
class Finding:
    """One thing the diagnosis measured, in plain words (``message``, a line of the stage log).

    ``kind``: "step", "feature", "contract", "precision" or "int8". The optional fields are in the
    report only when set.
    """

    kind: str
    step: str
    cause: str
    message: str
    node: str | None = None
    columns: list[str] | None = None
    max_abs_diff: float | None = None  # NaN: measured, but no finite difference (null in JSON)
    pairs: list[tuple[str, str]] | None = None
    reordered: list[str] | None = None
    restore: list[dict] | None = None
    drivers: list[str] | None = None

    def to_dict(self) -> dict:
        """The finding as parity_report.json holds it (this key order)."""
        out: dict[str, Any] = {"kind": self.kind, "step": self.step, "cause": self.cause}
        if self.node is not None:
            out["node"] = self.node
        if self.columns is not None:
            out["columns"] = self.columns
        out["message"] = self.message
        if self.max_abs_diff is not None:
            out["max_abs_diff"] = None if math.isnan(self.max_abs_diff) else self.max_abs_diff
        optional = {"pairs": self.pairs, "reordered": self.reordered}
        optional |= {"restore": self.restore, "drivers": self.drivers}
        out |= {key: value for key, value in optional.items() if value is not None}
        return out

"""Standalone scorer: raw records in, probability and decision out, from the contract files alone.

Only numpy, onnxruntime and jsonschema (plus the standard library and onnxship's ``core`` and
``contract``): no scikit-learn, pandas or joblib, and nothing is unpickled, so it runs wherever ONNX
Runtime does.
It loads model.onnx, onnx_features.json and onnx_metadata.json with every check a client makes
(``onnxship.contract.artifacts``) and encodes records with the one encoder
(``onnxship.contract.encode``), which the parity gate verifies.

    scorer = Scorer("artifacts")
    probability, decision = scorer.score_record({"state": "KS", "account_length": "128", ...})

Command line: ``python -m onnxship.serve score --artifacts artifacts --input rows.csv --output scores.csv``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onnxship.contract import artifacts
from onnxship.contract.artifacts import Contract
from onnxship.contract.cpu import warn_int8_family
from onnxship.contract.encode import Encoder
from onnxship.contract.runtime import session as new_session
from onnxship.contract.runtime import unchecked_run
from onnxship.core.errors import UserError


class Scorer:
    """Scores raw records with a model following its ``onnx_features.json`` and ``onnx_metadata.json``.

    ``Scorer(folder)`` loads and checks the three files (see ``onnxship.contract.artifacts.load``);
    ``Scorer.from_contract`` takes a contract already loaded (e.g. from bytes, or with another model).
    """

    def __init__(
        self,
        folder: str | Path,
        version_check: str = "strict",
        threads: int = 1,
        model_file: str | None = None,
    ) -> None:
        """``model_file`` scores another graph with the same inputs and outputs (the INT8 file) in
        place of the metadata's ``model_file``, whose sha256 then cannot be checked; if this CPU's
        integer kernels are not the family the metadata records, a warning says so once on stderr."""
        self._setup(artifacts.load(folder, version_check, model_file), threads)
        if model_file is not None:
            warn_int8_family(self.metadata.get("kernel_family"))

    @classmethod
    def from_contract(cls, contract: Contract, threads: int = 1) -> Scorer:
        scorer = cls.__new__(cls)
        scorer._setup(contract, threads)
        return scorer

    def _setup(self, contract: Contract, threads: int) -> None:
        self.contract = contract
        self.features, self.metadata = contract.features, contract.metadata
        try:
            self.session = new_session(contract.model, threads)
        except Exception as exc:  # onnxruntime raises its own types for a file it cannot parse
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"{contract.source}: onnxruntime cannot load the model ({detail[:200]}); "
                "copy model.onnx and its JSON files from the same export"
            ) from None
        artifacts.check_graph(contract, self.session)  # the inputs and the probability output
        try:
            self.encoder = Encoder(self.features)
        except re.error as exc:
            raise UserError(
                f"{contract.source}/onnx_features.json has a number_pattern that is not a regular "
                f"expression ({exc}); re-run the export stage (dvc repro)"
            ) from None
        self.inputs = self.encoder.inputs
        meta = self.metadata
        self.threshold = float(meta["threshold"])
        self.positive_label, self.negative_label = meta["positive_label"], meta["negative_label"]
        self.probability_output = meta["probability_output"]
        self._column = int(meta["positive_class_index"])
        self.outputs = [self.probability_output]
        # The feeds are always exactly the graph's inputs (checked above): skip onnxruntime's Python
        # re-check, whose cost grows with the square of the number of inputs.
        self._run = unchecked_run(self.session)
        self._local = threading.local()

    # -- batches -----------------------------------------------------------------------------------

    def values(self, record: Mapping[str, Any], row: int, line: int | None = None) -> list:
        """The record's converted values in input order; InvalidRecord names the first bad field."""
        return self.encoder.values(record, row, line)

    def feeds(self, rows: Sequence[Sequence]) -> dict[str, np.ndarray]:
        """The graph inputs from rows of converted values (``values``): packed by the contract version."""
        return self.encoder.feeds(rows)

    def probabilities(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """The positive-class probability per row: float32 values widened to float64 (exactly)."""
        output = self._run(self.outputs, feeds)[0]
        return output[:, self._column].astype(np.float64)

    def decide(self, probability: np.ndarray) -> np.ndarray:
        """The contract's rule: positive if p >= threshold, compared in float64."""
        return probability >= self.threshold

    def score_records(self, records: Iterable[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and decisions for a batch of records (rows numbered from 1 in errors)."""
        feeds = self.encoder.encode(records)
        if not len(next(iter(feeds.values()))):
            return np.empty(0, dtype=np.float64), np.empty(0, dtype=bool)
        probability = self.probabilities(feeds)
        return probability, self.decide(probability)

    # -- one record --------------------------------------------------------------------------------

    def score_record(self, record: Mapping[str, Any]) -> tuple[float, bool]:
        """(probability, decision) for one record: the lean path of an online service.

        The [1, 1] input arrays are allocated once per thread and refilled in place: allocating
        19 small arrays per call would cost about a third of the model's own run time.
        """
        local = self._local
        slots = getattr(local, "slots", None)
        if slots is None:
            local.feeds, local.slots = self.encoder.slots()
            slots = local.slots
        self.encoder.fill(record, slots)
        probability = float(self._run(self.outputs, local.feeds)[0][0, self._column])
        return probability, probability >= self.threshold

    def label(self, decision: bool) -> str:
        return self.positive_label if decision else self.negative_label

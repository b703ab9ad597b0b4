"""What runs in Spark's Python workers: a verified Scorer from the shipped bytes, cached per worker
process, and ``score_batches``, the ``mapInPandas`` function.

Free of import-time side effects: the workers import this module to find the scoring function.
pandas, numpy and pyspark are imported inside the functions that run on a worker.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from onnxship.contract import artifacts as contract_files
from onnxship.contract.encode import InvalidRecord
from onnxship.core.errors import UserError
from onnxship.serve.scorer import Scorer
from onnxship.serve.summary import MAX_LISTED

if TYPE_CHECKING:
    import pandas as pd

INVALID_COLUMN = "_onnxship_invalid"  # skip mode: why a row is invalid (JSON), null if it was scored
CORRUPT_COLUMN = "_onnxship_corrupt"  # CSV rows whose field count differs from the header's
ERROR_TOKEN = "onnxship-error="  # how a worker's error travels inside Spark's exception text


@dataclass(frozen=True)
class Artifacts:
    """The contract files' bytes as verified on the driver: what travels to the workers."""

    model: bytes
    features: bytes
    metadata: bytes
    version_check: str

    @functools.cached_property
    def key(self) -> str:
        """Identifies a verified scorer in a worker's cache: the sha256s of the three files."""
        parts = (hashlib.sha256(blob).hexdigest() for blob in (self.model, self.features, self.metadata))
        return "-".join((*parts, self.version_check))


def scorer_from_bytes(artifacts: Artifacts) -> Scorer:
    """A Scorer built from the shipped bytes with every check of the contract (run again on each
    worker: its ONNX Runtime may not be the driver's)."""
    contract = contract_files.from_bytes(
        artifacts.features,
        artifacts.metadata,
        artifacts.model,
        artifacts.version_check,
        source="the artifacts shipped to a Spark worker",
    )
    return Scorer.from_contract(contract, threads=1)


# One verified Scorer per Python worker process and artifact set, built on first use.
_SCORERS: dict[str, Scorer] = {}


def worker_scorer(artifacts: Artifacts) -> Scorer:
    scorer = _SCORERS.get(artifacts.key)
    if scorer is None:
        scorer = _SCORERS[artifacts.key] = scorer_from_bytes(artifacts)
    return scorer


@dataclass(frozen=True)
class Job:
    """What the scoring function needs besides the batches; pickled into the closure."""

    artifacts: Artifacts
    features: tuple[str, ...]  # the input columns the model reads, by name
    passthrough: tuple[str, ...]  # copied to the output (the id column first, if any)
    id_column: str | None
    skip_invalid: bool
    header_fields: int | None  # CSV input: fields per row in the header (None for Parquet)


class WorkerError(Exception):
    """Raised on a worker; its text carries the error for the driver to print as one line."""

    def __init__(self, payload: dict) -> None:
        token = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
        super().__init__(f"{payload['message']} [{ERROR_TOKEN}{token}]")


def worker_error(exc: BaseException) -> dict | None:
    """The error a worker raised (WorkerError), found in the text of Spark's exception, or None."""
    match = re.search(re.escape(ERROR_TOKEN) + r"([A-Za-z0-9_=-]+)", str(exc))
    if match is None:
        return None
    return json.loads(base64.urlsafe_b64decode(match[1]))


@dataclass
class _Partition:
    """Where a task is in its input partition: rows seen, invalid rows listed so far."""

    index: int
    position: int = 0
    listed: int = 0
    scorer: Scorer | None = field(default=None, repr=False)


def score_batches(job: Job, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The ``mapInPandas`` function: one input partition's batches in, scored batches out.

    Each batch is one ``session.run``. An invalid row stops the task with a WorkerError, or with
    ``skip_invalid`` is marked in INVALID_COLUMN (details for the first MAX_LISTED of a partition)
    for the driver to count and filter out.
    """
    partition = _Partition(_partition_id())
    for frame in batches:
        if partition.scorer is None:
            try:
                partition.scorer = worker_scorer(job.artifacts)
            except UserError as exc:
                raise WorkerError({"message": f"on a Spark worker: {exc}"}) from None
        # Positions, whatever index the batch came with.
        yield _score_batch(job, partition, frame.reset_index(drop=True))


def _score_batch(job: Job, partition: _Partition, frame: pd.DataFrame) -> pd.DataFrame:
    """One batch scored: the passthrough columns, probability, decision, label (null and NaN for
    an invalid row, which skip mode marks in INVALID_COLUMN)."""
    import numpy as np
    import pandas as pd

    scorer, n = partition.scorer, len(frame)
    good, values, invalid = _read_rows(job, partition, frame)
    probability = np.full(n, np.nan)
    decision = np.zeros(n, dtype=bool)
    if values:
        p = scorer.probabilities(scorer.feeds(values))
        probability[good], decision[good] = p, scorer.decide(p)
    label = np.where(decision, scorer.positive_label, scorer.negative_label).astype(object)
    if len(good) < n:
        label[[i for i in range(n) if invalid[i] is not None]] = None
    out = frame[list(job.passthrough)].assign(probability=probability, decision=decision, label=label)
    if job.skip_invalid:
        out[INVALID_COLUMN] = pd.Series(invalid, dtype=object)
    return out


def _read_rows(job: Job, partition: _Partition, frame: pd.DataFrame) -> tuple[list, list, list]:
    """The batch's rows through ``Scorer.values``: indexes of the valid rows, their values, and per
    row None (valid) or its INVALID_COLUMN text ("" once MAX_LISTED are listed in this partition)."""
    n = len(frame)
    columns = [frame[name].tolist() for name in job.features]
    ids = frame[job.id_column].tolist() if job.id_column else None
    problems = row_problems(job, frame)
    good, values, invalid = [], [], [None] * n
    for i, cells in enumerate(zip(*columns, strict=True) if columns else [()] * n):
        partition.position += 1
        try:
            if problems and i in problems:
                raise InvalidRecord(partition.position, None, problems[i])
            record = dict(zip(job.features, cells, strict=True))
            values.append(partition.scorer.values(record, partition.position))
            good.append(i)
        except InvalidRecord as exc:
            where = row_name(job, ids, i, partition)
            found = {"row": where, "column": exc.column, "reason": exc.reason}
            if not job.skip_invalid:
                column = f", column '{exc.column}'" if exc.column else ""
                message = f"row {where}{column}: {exc.reason}"
                raise WorkerError({"message": message, "invalid": found}) from None
            partition.listed += 1
            listed = partition.listed <= MAX_LISTED
            where_in = {"partition": partition.index, "position": partition.position}
            invalid[i] = json.dumps({**found, **where_in}) if listed else ""
    return good, values, invalid


def row_name(job: Job, ids: list | None, index: int, partition: _Partition) -> str:
    """How an error names a row: by its id, else by its position in its input partition."""
    if ids is not None:
        return f"{job.id_column}={ids[index]}"
    return f"{partition.position} of input partition {partition.index}"


def row_problems(job: Job, frame: pd.DataFrame) -> dict[int, str]:
    """Rows of the batch that are wrong before their cells are read (a CSV line with another number
    of fields than the header, an empty id), by index: found column-wise, off the per-row path."""
    problems: dict[int, str] = {}
    if job.id_column:
        for i in frame.index[frame[job.id_column].isna()].tolist():
            problems[i] = f"the id column '{job.id_column}' is empty: every row needs an id"
    if CORRUPT_COLUMN in frame.columns:
        corrupt = frame[CORRUPT_COLUMN]
        for i, line in corrupt[corrupt.notna()].items():
            fields = len(next(csv.reader([line]), []))
            problems[i] = f"has {fields} fields but the header has {job.header_fields}"
    return problems


def _partition_id() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.partitionId() if context is not None else 0

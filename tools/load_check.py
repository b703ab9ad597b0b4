"""What the load tool sends and how it judges each answer (tools/load_test.py runs the traffic).

Pure parts, so a test can check them with hand-worked values:
- ``typed_records``: the rows of a CSV as JSON records, numbers as JSON numbers (as a client sends them);
- ``expected_scores``: the CLI scorer's output for those records (``python -m onnxship.serve score``);
- ``Traffic``: request ``i``'s body and what a right answer to it is (good or malformed, decided by a
  seeded draw), and ``Traffic.judge`` naming what is wrong with an answer, or None;
- ``percentile``: nearest rank, so p99 of 100 latencies is the 99th smallest, a latency measured.
"""

from __future__ import annotations

import csv
import json
import math
import random
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from onnxship.core.errors import UserError

TOLERANCE = 1e-6  # probability: the answer's vs the CLI scorer's
# A malformed request's kind -> the status the protocol gives it (issue 24's server: 400 for JSON that
# does not parse or does not have the shape, 422 for a record the contract refuses).
MALFORMED = {"bad_json": 400, "wrong_shape": 400, "invalid_record": 422}
INVALID_VALUE = "not-a-number"


@dataclass(frozen=True)
class Expected:
    """The CLI scorer's answer for one record."""

    probability: float
    decision: int
    label: str


@dataclass(frozen=True)
class Request:
    """One request to send: its body and how to judge the answer."""

    body: bytes
    kind: str  # "good" or a key of MALFORMED
    rows: tuple[int, ...]  # record numbers scored (good requests)
    field: str | None = None  # the field made invalid (invalid_record)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``q`` % of the values at or below
    it (the ceil(q/100 * n)-th smallest). Always one of the values; NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def typed_records(csv_path: str | Path, features: dict) -> list[dict]:
    """The CSV's rows as records holding the contract's inputs only: numeric inputs as JSON numbers
    (None when empty), the rest as strings. Extra columns (the target) are left out."""
    inputs = features["inputs"]
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    records = []
    for row in rows:
        record = {}
        for spec in inputs:
            value = row.get(spec["name"])
            if spec["dtype"] == "float32":
                record[spec["name"]] = float(value) if value not in (None, "") else None
            else:
                record[spec["name"]] = value
        records.append(record)
    return records


def expected_scores(records: list[dict], artifacts: str | Path) -> list[Expected]:
    """Scores of ``records`` by the CLI scorer itself (a subprocess, JSON lines in and out)."""
    with tempfile.TemporaryDirectory(prefix="load_test_") as folder:
        given, scored = Path(folder) / "records.jsonl", Path(folder) / "scores.jsonl"
        given.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "onnxship.serve",
            "score",
            "--artifacts",
            str(artifacts),
            "--input",
            str(given),
            "--output",
            str(scored),
            "--progress",
            "never",
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise UserError(f"the CLI scorer failed: {done.stderr.strip()[-500:]}")
        lines = scored.read_text(encoding="utf-8").splitlines()
    answers = [json.loads(line) for line in lines]
    return [Expected(float(a["probability"]), int(a["decision"]), str(a["label"])) for a in answers]


def split_body(records: list[dict]) -> dict:
    """pandas' ``orient="split"`` form of the records."""
    columns = list(records[0])
    return {"columns": columns, "data": [[r[c] for c in columns] for r in records]}


@dataclass(frozen=True)
class ProbaAnswers:
    """How to read an answer of class probabilities, ``[[p0, p1], ...]`` (MLflow's sklearn flavor with
    ``predict_proba``), as our server's records: the contract's positive column and decision rule."""

    positive_class_index: int
    threshold: float
    positive_label: str
    negative_label: str

    def prediction(self, got: object) -> object:
        if not isinstance(got, list) or len(got) <= self.positive_class_index:
            return got
        p = got[self.positive_class_index]
        decision = int(p >= self.threshold)
        return {
            "probability": p,
            "decision": decision,
            "label": self.positive_label if decision else self.negative_label,
        }


class Traffic:
    """Request ``i`` of a cell: ``batch`` consecutive records (wrapping), or, with probability
    ``malformed_share`` (a seeded draw), one of the malformed kinds. ``proba`` reads answers of class
    probabilities (None: our server's ``{"probability", "decision", "label"}`` records)."""

    def __init__(
        self,
        records: list[dict],
        batch: int,
        malformed_share: float = 0.0,
        payload: str = "records",
        proba: ProbaAnswers | None = None,
    ):
        self.records, self.batch, self.share, self.payload = records, batch, malformed_share, payload
        self.proba = proba
        self._bodies: dict[tuple[int, bool], bytes] = {}
        self.numeric = next(k for k, v in records[0].items() if isinstance(v, float))

    def request(self, i: int, seed: int = 0) -> Request:
        rows = tuple((i * self.batch + k) % len(self.records) for k in range(self.batch))
        chosen = [self.records[r] for r in rows]
        draw = random.Random(seed * 1_000_003 + i)
        if self.share and draw.random() < self.share:
            kind = list(MALFORMED)[draw.randrange(len(MALFORMED))]
            return self._malformed(kind, chosen, draw)
        split = self.payload == "split" or (self.payload == "mixed" and i % 2 == 1)
        return Request(self._encode(chosen, rows[0], split), "good", rows)

    def _encode(self, chosen: list[dict], start: int, split: bool) -> bytes:
        # One body per first record and form, shared by every request that sends it: 20,000 requests
        # of 64 records hold at most len(records) bodies of about 30 kB each, not 20,000.
        key = (start, split)
        if key not in self._bodies:
            body = {"dataframe_split": split_body(chosen)} if split else {"dataframe_records": chosen}
            self._bodies[key] = json.dumps(body).encode()
        return self._bodies[key]

    def _malformed(self, kind: str, chosen: list[dict], draw: random.Random) -> Request:
        if kind == "bad_json":
            return Request(json.dumps({"dataframe_records": chosen}).encode()[:-7], kind, ())
        if kind == "wrong_shape":
            shapes = [{"records": chosen}, {"dataframe_records": chosen[0]}, [chosen], {"dataframe_split": 3}]
            return Request(json.dumps(shapes[draw.randrange(len(shapes))]).encode(), kind, ())
        bad = [dict(r) for r in chosen]
        bad[draw.randrange(len(bad))][self.numeric] = INVALID_VALUE
        return Request(json.dumps({"dataframe_records": bad}).encode(), kind, (), self.numeric)

    def judge(self, request: Request, status: int, body: bytes, expected: list[Expected]) -> str | None:
        """What is wrong with the answer ``(status, body)`` to ``request``, or None if it is right."""
        if request.kind != "good":
            want = MALFORMED[request.kind]
            if status != want:
                return f"{request.kind}: status {status}, expected {want}"
            try:
                json.loads(body)
            except ValueError:
                return f"{request.kind}: the {status} body is not JSON"
            if request.field and request.field not in body.decode(errors="replace"):
                return f"{request.kind}: the 422 body does not name the field {request.field!r}"
            return None
        if status != 200:
            return f"good request: status {status}: {body[:200].decode(errors='replace')}"
        try:
            predictions = json.loads(body)["predictions"]
        except (ValueError, KeyError, TypeError):
            return f"good request: no predictions in {body[:200].decode(errors='replace')}"
        if not isinstance(predictions, list) or len(predictions) != len(request.rows):
            return f"good request: {len(predictions)} predictions for {len(request.rows)} records"
        for row, got in zip(request.rows, predictions, strict=True):
            wrong = _wrong_prediction(self.proba.prediction(got) if self.proba else got, expected[row])
            if wrong:
                return f"record {row}: {wrong}"
        return None


def _wrong_prediction(got: object, want: Expected) -> str | None:
    if not isinstance(got, dict):
        return f"prediction {got!r} is not an object"
    try:
        probability, decision = float(got["probability"]), int(got["decision"])
    except (KeyError, TypeError, ValueError):
        return f"prediction {got!r} lacks probability or decision"
    if not abs(probability - want.probability) <= TOLERANCE:
        return f"probability {probability!r}, the CLI scorer gives {want.probability!r}"
    if decision != want.decision:
        return f"decision {decision}, the CLI scorer gives {want.decision}"
    if got.get("label") != want.label:
        return f"label {got.get('label')!r}, the CLI scorer gives {want.label!r}"
    return None

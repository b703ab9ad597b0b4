"""The parity stage's one function: load what train, export and quantize wrote, as a client loads
it, build the rows the gate scores (held-out rows, edge rows and tree boundary rows), run the gate,
and return the report with the per-row probability differences. ``scripts/parity.py`` only writes
them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from onnxship.contract import artifacts
from onnxship.convert.boundary_rows import boundary_rows
from onnxship.core import files
from onnxship.core.errors import UserError
from onnxship.core.params import ParityParams
from onnxship.core.paths import Artifacts
from onnxship.train import table
from onnxship.train.lineage import load_trained, positive_column
from onnxship.verify import parity
from onnxship.verify.diagnose.run import log_lines

log = logging.getLogger("parity")

# |diff| below this is drawn at this value in prob_diff.csv: a log axis cannot show 0.
DIFF_FLOOR = 1e-9


@dataclass(frozen=True)
class ParityResult:
    """The gate's report (parity_report.json) and |p_sklearn - p_backend| per row (prob_diff.csv)."""

    report: dict
    prob_diff_csv: str

    @property
    def passed(self) -> bool:
        return self.report["passed"]


def run(paths: Artifacts, params: ParityParams) -> ParityResult:
    """Judge each ONNX backend in ``paths`` against the scikit-learn pipeline (see verify.parity)."""
    report, probabilities = parity.run_gate(gate_input(paths, params))
    for name, result in report["backends"].items():
        figures = "not scored" if result.get("refused") else f"max diff {result['max_abs_diff']:.3g}"
        log.info("%s: %s, %s", name, figures, "; ".join(result["reasons"]) or "passed")
        for line in log_lines(result.get("diagnosis", {})):
            log.warning("%s diagnosis: %s", name, line)
    if not report["backends"]["int8"]["deployable"] and params.int8_on_failure == "not_deployable":
        log.warning("INT8 is outside its tolerances: marked not deployable (parity.int8_on_failure)")
    reference = probabilities.pop("sklearn")
    return ParityResult(report, prob_diff_csv(reference, probabilities))


def gate_input(paths: Artifacts, params: ParityParams) -> parity.GateInput:
    """Train's pipeline and threshold, the held-out rows (plus edge rows and boundary rows), and
    each backend."""
    trained, problems = load_trained(paths, strict_threshold=False)
    if not paths.test_csv.is_file():
        raise UserError(f"{paths.test_csv} not found: run the train stage first (dvc repro)")
    raw = sample_rows(table.read_csv(paths.test_csv), params.max_rows)
    cases = [f"test row {i}" for i in range(len(raw))]
    rows = raw.to_dict("records")
    if params.edge_rows:
        features = files.read_json(paths.features)
        edges, edge_cases = parity.edge_rows(raw.iloc[0], features, raw, params.max_edge_rows)
        rows, cases = rows + edges.to_dict("records"), cases + edge_cases
    boundary = boundary_rows(trained.pipeline, raw, trained.roles, params.max_boundary_rows)
    if boundary.summary.get("trees"):
        log.info("boundary rows: %d, for %s", len(boundary.rows), boundary.summary)
    rows, cases = rows + boundary.rows.to_dict("records"), cases + boundary.cases
    return parity.GateInput(
        pipeline=trained.pipeline,
        threshold=trained.threshold,
        roles=trained.roles,
        rows=rows,
        cases=cases,
        n_test=len(raw),
        backends=backends(paths),
        params=params,
        problems={"onnx": problems, "int8": problems},
        split_plan=split_plan(paths),
        n_boundary=len(boundary.rows),
        boundary=boundary.summary if boundary.summary.get("trees") else {},
        positive_column=positive_column(trained.pipeline.classes_, trained.lineage),
    )


def split_plan(paths: Artifacts) -> list[dict]:
    """The nodes quantize's block split added to the INT8 graph, as its report records them."""
    if not paths.quantize_report.is_file():
        return []  # the INT8 backend is then refused (no report to check its sha256 against)
    return files.read_json(paths.quantize_report).get("split_plan", [])


def backends(paths: Artifacts) -> dict[str, artifacts.Contract | str]:
    """Each ONNX backend's contract, loaded with every client check, or why a client refuses it."""
    loaded: dict[str, artifacts.Contract | str] = {}
    for name, model_file in (("onnx", None), ("int8", paths.model_int8.name)):
        loaded[name] = parity.client_load(lambda f=model_file: artifacts.load(paths.root, model_file=f))
    int8 = loaded["int8"]
    if not isinstance(int8, str):
        expected = files.read_json(paths.quantize_report).get("int8_sha256")
        if files.sha256_file(paths.model_int8) != expected:
            loaded["int8"] = f"{paths.model_int8} sha256 differs from quantize_report.json"
    return loaded


def sample_rows(raw: pd.DataFrame, max_rows: int | None) -> pd.DataFrame:
    """The first ``max_rows`` held-out rows (parity.max_rows): train_test_split shuffles, so they
    are a random sample, and every run takes the same ones."""
    if max_rows is None or len(raw) <= max_rows:
        return raw
    log.info("scoring the first %d of %d held-out rows (parity.max_rows)", max_rows, len(raw))
    return raw.iloc[:max_rows]


def prob_diff_csv(reference: np.ndarray, backends: dict[str, np.ndarray]) -> str:
    """plots/prob_diff.csv for `dvc plots show`: |p_sklearn - p_backend| per row and backend,
    against the scikit-learn probability."""
    names = list(backends)
    diffs = [np.maximum(np.abs(reference - backends[n]), DIFF_FLOOR) for n in names]
    rows = [(float(reference[i]), *(float(d[i]) for d in diffs)) for i in range(len(reference))]
    return files.csv_text(["p_sklearn", *names], rows)

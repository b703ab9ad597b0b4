"""Stage 4, parity: scikit-learn vs ONNX FP32 vs ONNX INT8, on held-out and edge rows.

Reads params.yaml (parity), train's outputs (lineage.json, the verified best_model.joblib,
threshold.txt, test.csv), export's contract files and the INT8 file with its quantize_report.json.
Each ONNX backend is loaded as a client loads it and scores the raw rows through the shipped scorer.
Writes artifacts/parity_report.json always, then exits 0 if the gate passed and 1 if not.
"""

from __future__ import annotations

import logging

import pandas as pd

from onnxship.contract import artifacts
from onnxship.core import files
from onnxship.core.errors import UserError
from onnxship.core.params import load_params
from onnxship.core.paths import Artifacts
from onnxship.core.stage import run
from onnxship.train import data
from onnxship.train.lineage import load_trained
from onnxship.verify import diagnose, parity, plots

ARTIFACTS = Artifacts()
log = logging.getLogger("parity")


def backends() -> dict[str, artifacts.Contract | str]:
    """Each ONNX backend's contract, loaded with every client check, or why a client refuses it."""
    loaded: dict[str, artifacts.Contract | str] = {}
    for name, model_file in (("onnx", None), ("int8", ARTIFACTS.model_int8.name)):
        loaded[name] = parity.client_load(lambda f=model_file: artifacts.load(ARTIFACTS.root, model_file=f))
    int8 = loaded["int8"]
    if not isinstance(int8, str):
        expected = files.read_json(ARTIFACTS.quantize_report).get("int8_sha256")
        if files.sha256_file(ARTIFACTS.model_int8) != expected:
            loaded["int8"] = f"{ARTIFACTS.model_int8} sha256 differs from quantize_report.json"
    return loaded


def main() -> int:
    params = load_params("params.yaml").parity
    trained, problems = load_trained(ARTIFACTS, strict_threshold=False)
    if not ARTIFACTS.test_csv.is_file():
        raise UserError(f"{ARTIFACTS.test_csv} not found: run the train stage first (dvc repro)")
    raw = sample_rows(data.read_csv(ARTIFACTS.test_csv), params.max_rows)
    cases = [f"test row {i}" for i in range(len(raw))]
    rows = raw.to_dict("records")
    if params.edge_rows:
        features = files.read_json(ARTIFACTS.features)
        edges, edge_cases = parity.edge_rows(raw.iloc[0], features, raw, params.max_edge_rows)
        rows, cases = rows + edges.to_dict("records"), cases + edge_cases
    gate = parity.GateInput(
        pipeline=trained.pipeline,
        threshold=trained.threshold,
        roles=trained.roles,
        rows=rows,
        cases=cases,
        n_test=len(raw),
        backends=backends(),
        params=params,
        problems={"onnx": problems, "int8": problems},
    )
    report, probabilities = parity.run_gate(gate)
    for name, result in report["backends"].items():
        figures = "not scored" if result.get("refused") else f"max diff {result['max_abs_diff']:.3g}"
        log.info("%s: %s, %s", name, figures, "; ".join(result["reasons"]) or "passed")
        for line in diagnose.log_lines(result.get("diagnosis", {})):
            log.warning("%s diagnosis: %s", name, line)
    files.write_json(ARTIFACTS.parity_report, report)
    reference = probabilities.pop("sklearn")
    files.atomic_write_text(ARTIFACTS.plot("prob_diff.csv"), plots.prob_diff_csv(reference, probabilities))
    if not report["backends"]["int8"]["deployable"] and params.int8_on_failure == "not_deployable":
        log.warning("INT8 is outside its tolerances: marked not deployable (parity.int8_on_failure)")
    return 0 if report["passed"] else 1


def sample_rows(raw: pd.DataFrame, max_rows: int | None) -> pd.DataFrame:
    """The first ``max_rows`` held-out rows (parity.max_rows): train_test_split shuffles, so they
    are a random sample, and every run takes the same ones."""
    if max_rows is None or len(raw) <= max_rows:
        return raw
    log.info("scoring the first %d of %d held-out rows (parity.max_rows)", max_rows, len(raw))
    return raw.iloc[:max_rows]


if __name__ == "__main__":
    run(main)

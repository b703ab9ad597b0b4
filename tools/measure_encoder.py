"""The scorer's speed on a generated wide table: rows/s end to end and the encoder alone (not in CI).

Generates a table of COLUMNS columns (about 3/4 of them 0/1 indicators, 1/4 decimals like 12.345,
2 % empty cells, a few categorical columns with 8 levels), fits a small model of ``--family`` on
2,000 rows, exports it with the package's converter, and measures on ``--rows`` more rows:
- ``score_file`` (CSV in, scores out, what ``python -m onnxship.serve score`` runs) at batch 1 and
  1,024: rows/s, best of ``--repeats``;
- the encoder alone on 1,024 records (dicts of strings, as ``Scorer.score_records`` gets them);
- the model alone at batch 1,024, on feeds built beforehand.
Prints one JSON line per column count, with the load average before and after (figures are only
comparable on a quiet machine). ``--repo`` measures another code tree (e.g. the commit before):

    python tools/measure_encoder.py 20 2000
    python tools/measure_encoder.py --repo /tmp/old 20 2000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LEVELS = ["KS", "OH", "NJ", "CA", "TX", "NY", "WA", "FL"]


def table(columns: int, rows: int, seed: int = 0) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows of cell text, target labels) of a generated table."""
    rng = np.random.default_rng(seed)
    categorical = max(1, columns // 500)
    numeric = columns - categorical
    floats = np.round(rng.normal(50, 30, (rows, numeric)), 3)
    indicators = rng.random((rows, numeric)) < 0.3
    is_float = np.arange(numeric) % 4 == 0
    text = np.where(is_float, np.char.mod("%.3f", floats), np.where(indicators, "1", "0")).astype(object)
    text[rng.random((rows, numeric)) < 0.02] = ""
    levels = rng.integers(0, len(LEVELS), (rows, categorical))
    score = indicators[:, :8].sum(axis=1) - 2.4 + (levels[:, 0] < 3) + rng.normal(0, 1, rows)
    header = [f"x{j}" for j in range(numeric)] + [f"c{j}" for j in range(categorical)]
    cells = [row + [LEVELS[k] for k in lv] for row, lv in zip(text.tolist(), levels.tolist(), strict=True)]
    return header, cells, ["yes" if s > 0 else "no" for s in score]


def scorer_for(
    header: list[str],
    cells: list[list[str]],
    labels: list[str],
    family: str,
    contract: int = 2,
):
    """A Scorer of a ``family`` model fitted on the rows given, built with the package's export as
    contract ``contract`` (2: the packed inputs export writes by default; 1: one input per column)."""
    import pandas as pd

    from onnxship.contract.artifacts import Contract
    from onnxship.convert import export, packing
    from onnxship.core.params import TrainParams
    from onnxship.serve.scorer import Scorer
    from onnxship.train import models
    from onnxship.train.table import Roles

    categorical = [name for name in header if name.startswith("c")]
    roles = Roles([name for name in header if name.startswith("x")], categorical)
    frame = pd.DataFrame(cells, columns=header)
    features = frame[roles.numeric].replace("", "nan").astype(np.float32)
    features[categorical] = frame[categorical]
    params = TrainParams.model_validate({"candidates": [family], "hist_gradient_boosting": {"max_iter": 40}})
    pipeline = models.build_pipeline(family, roles, params).fit(features, np.array(labels) == "yes")
    model = export.convert(pipeline, roles, 17)
    if contract == 2:
        packing.pack_inputs(model, packing.layout(roles.numeric, roles.categorical))
    shipped = Contract(
        export.feature_schema(model, roles, pipeline, version=contract),
        {"threshold": 0.5, "positive_label": "yes", "negative_label": "no"}
        | {"probability_output": "probabilities", "positive_class_index": 1, "class_order": ["no", "yes"]},
        model.SerializeToString(),
        "generated",
    )
    return Scorer.from_contract(shipped)


def best_rate(run, rows: int, repeats: int) -> float:
    """Rows per second of ``run()`` (which handles ``rows`` rows), best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return round(rows / best, 1)


def measure(columns: int, args: argparse.Namespace) -> dict:
    from onnxship.serve.files import FileOptions, score_file

    header, cells, labels = table(columns, 2000 + args.rows)
    scorer = scorer_for(header, cells[:2000], labels[:2000], args.family, args.contract)
    test = cells[2000:]
    records = [dict(zip(header, row, strict=True)) for row in test[:1024]]
    feeds = scorer.encoder.encode(records)
    figures: dict = {"columns": columns, "family": args.family, "contract": args.contract, "rows": args.rows}
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.csv", Path(folder) / "out.csv"
        source.write_text("\n".join(",".join(row) for row in [header, *test]) + "\n")
        for batch in (1, 1024):
            n = min(args.rows, args.batch1_rows) if batch == 1 else args.rows
            if n < args.rows:
                source.write_text("\n".join(",".join(row) for row in [header, *test[:n]]) + "\n")
            options = FileOptions(batch_size=batch, progress="never")
            figures[f"score_file_batch_{batch}_rows_per_s"] = best_rate(
                lambda o=options: score_file(scorer, source, target, o), n, args.repeats
            )
            source.write_text("\n".join(",".join(row) for row in [header, *test]) + "\n")
    figures["encoder_1024_records_rows_per_s"] = best_rate(
        lambda: scorer.encoder.encode(records), len(records), args.repeats
    )
    figures["model_1024_rows_per_s"] = best_rate(
        lambda: scorer.probabilities(feeds), len(records), args.repeats
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("columns", type=int, nargs="+")
    parser.add_argument("--rows", type=int, default=8192, help="rows scored at batch 1,024")
    parser.add_argument("--batch1-rows", type=int, default=500, help="rows scored at batch 1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--family", default="hist_gradient_boosting")
    parser.add_argument("--contract", type=int, choices=(1, 2), default=2, help="contract version exported")
    parser.add_argument("--repo", help="import onnxship from this code tree instead")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.repo or Path(__file__).resolve().parents[1]).resolve()))
    for columns in args.columns:
        before = os.getloadavg()
        figures = measure(columns, args)
        figures["code"] = str(Path(sys.modules["onnxship"].__file__).parents[1])
        figures["load_before"], figures["load_after"] = list(before), list(os.getloadavg())
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()

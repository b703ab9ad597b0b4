"""The peer for tools/load_test.py: our fitted pipeline as an MLflow model, served by ``mlflow models serve``.

Run with an MLflow venv's Python, never ours (mlflow pins packages of its own; docs/serving.md says how
to make that venv with our scikit-learn, numpy, pandas, scipy and joblib):

    ../mlflow-venv/bin/python -m tools.mlflow_baseline --artifacts artifacts --out /tmp/mlflow-model

It saves artifacts/best_model.joblib (the pipeline model.onnx was exported from) with MLflow's sklearn
flavor, whose pyfunc returns ``predict_proba`` (``pyfunc_predict_fn``): the same work as our server,
the probability of every class per record, with a signature inferred from five test rows, as MLflow
advises. It prints the command that serves it on 127.0.0.1 and the load-test command to run against it
(``--answers proba``: MLflow answers ``{"predictions": [[p0, p1], ...]}``). Not imported by the tests;
mlflow is in no requirements file (tests/test_dependencies.py allows this file alone to import it).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from tools.load_check import typed_records


def build(artifacts: Path, out: Path) -> None:
    """Save the MLflow model folder ``out`` from ``artifacts``."""
    import joblib
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature

    if out.exists():
        raise SystemExit(f"error: {out} exists; give a new --out folder")
    pipeline = joblib.load(artifacts / "best_model.joblib")
    features = json.loads((artifacts / "onnx_features.json").read_text(encoding="utf-8"))
    example = pd.DataFrame(typed_records(artifacts / "test.csv", features)[:5])
    signature = infer_signature(example, pipeline.predict_proba(example))
    # pickle, as joblib wrote it: MLflow's default (skops) refuses our own transformers' types unless
    # each is listed as trusted, and the list would change with the model family.
    mlflow.sklearn.save_model(
        pipeline,
        str(out),
        signature=signature,
        pyfunc_predict_fn="predict_proba",
        serialization_format="pickle",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.mlflow_baseline", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--artifacts", default="artifacts", type=Path)
    parser.add_argument("--out", required=True, type=Path, help="the MLflow model folder to create")
    args = parser.parse_args(argv)
    build(args.artifacts, args.out)
    # mlflow starts `uvicorn` by name: the venv's bin/ must be on PATH, hence the activate.
    activate = Path(sys.executable).parent / "activate"
    model = shlex.quote(str(args.out.resolve()))
    serve = f"mlflow models serve -m {model} --env-manager local -h 127.0.0.1 -p {{port}}"
    wrapped = shlex.quote(f". {activate} && exec {serve}")
    print(f"saved {args.out}\nserve it:\n  bash -c {wrapped.replace('{port}', '5000')}")
    print("load it (our venv):\n  python -m tools.load_test --answers proba --connections 16 --batch 1 \\")
    print(f"""    --command "bash -c {wrapped}\"""")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Spark batch scoring (onnxship.serve.spark) against the standalone scorer, on artifacts the real pipeline
built: same probabilities and decisions, same invalid-row rules, artifacts refused before Spark runs.

One local SparkSession (2 cores, bound to 127.0.0.1) serves the whole module; the two command-line
tests start their own, as a user's run does.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from onnxship.core.errors import UserError
from onnxship.serve import spark
from onnxship.serve.files import FileOptions, score_file
from onnxship.serve.passthrough import Passthrough, keep_list
from onnxship.serve.scorer import Scorer
from onnxship.serve.spark import worker
from onnxship.train import data
from onnxship.verify import parity
from tests.conftest import REPO

SCORES = ["probability", "decision", "label"]


@pytest.fixture(scope="module")
def session():
    saved = dict(os.environ)
    started = spark.start_session("local[2]", conf={"spark.sql.shuffle.partitions": "2"})
    yield started
    started.stop()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def verified(built):
    """The artifacts as the driver ships them, and the standalone scorer on the same folder."""
    artifacts, scorer = spark.load_artifacts(built.served)
    return artifacts, scorer


def raw_frame(artifacts: Path) -> pd.DataFrame:
    """test.csv's rows plus the parity gate's edge rows, as raw strings, with a 1-based id."""
    raw = data.read_csv(artifacts / "test.csv")
    edges, _ = parity.edge_rows(raw.iloc[3], Scorer(artifacts).features, raw)
    frame = pd.concat([raw, edges], ignore_index=True)
    frame.insert(0, "id", range(1, len(frame) + 1))
    return frame


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run_spark(session, verified, source: Path, out: Path, **options) -> dict:
    """Spark's summary as JSON keys, next to the standalone scorer's."""
    artifacts, scorer = verified
    summary = spark.score(session, artifacts, scorer, str(source), str(out), spark.ScoreOptions(**options))
    return summary.to_dict()


# --- same results as the standalone scorer ---------------------------------------------------------


def test_csv_scores_equal_the_standalone_scorer_on_test_and_edge_rows(session, verified, built, tmp_path):
    frame = raw_frame(built.served)
    source = write_csv(tmp_path / "rows.csv", list(frame.columns), frame.values.tolist())
    summary = run_spark(
        session, verified, source, tmp_path / "scores.parquet", id_column="id", batch_size=128
    )
    assert (summary["rows_read"], summary["rows_scored"], summary["rows_skipped"]) == (len(frame),) * 2 + (0,)

    got = pd.read_parquet(tmp_path / "scores.parquet")
    assert list(got.columns) == ["id", "probability", "decision", "label"]
    assert got["probability"].dtype == np.float64 and got["decision"].dtype == bool
    got = got.assign(id=got["id"].astype(int)).sort_values("id")
    assert got["id"].tolist() == frame["id"].tolist()

    scorer = Scorer(built.served)
    with open(source, newline="") as handle:
        probability, decision = scorer.score_records(csv.DictReader(handle))
    assert np.abs(got["probability"].to_numpy() - probability).max() <= 1e-6
    assert got["decision"].tolist() == decision.tolist()
    assert got["label"].tolist() == [scorer.label(d) for d in decision]
    assert summary["positives"] == int(decision.sum())


def test_id_column_and_keep_copy_what_the_standalone_scorer_copies(session, verified, built, tmp_path):
    """The same --id-column / --keep on the same CSV: Spark's columns are the CLI's after `row`,
    with the same values (Spark reads CSV cells as text, as the CLI copies them)."""
    frame = raw_frame(built.served).head(40)
    source = write_csv(tmp_path / "rows.csv", list(frame.columns), frame.values.tolist())
    keep = keep_list(" state, id ,account_length")
    run_spark(session, verified, source, tmp_path / "scores.parquet", id_column="id", keep=list(keep))
    got = pd.read_parquet(tmp_path / "scores.parquet")
    got = got.assign(order=got["id"].astype(int)).sort_values("order").drop(columns="order")

    options = FileOptions(passthrough=Passthrough("id", keep))
    score_file(Scorer(built.served), source, tmp_path / "cli.csv", options)
    cli_rows = pd.read_csv(tmp_path / "cli.csv", dtype=str, keep_default_na=False)
    assert list(got.columns) == list(cli_rows.columns)[1:] == ["id", "state", "account_length", *SCORES]
    for name in ("id", "state", "account_length", "label"):
        assert got[name].tolist() == cli_rows[name].tolist(), name
    assert got["decision"].tolist() == (cli_rows["decision"] == "1").tolist()


def test_parquet_with_typed_columns_scores_as_the_standalone_scorer_scores_those_values(
    session, verified, built, tmp_path
):
    """Parquet gives numbers as numbers and gaps as nulls: the same values as JSON records give
    the standalone scorer, and the same scores. Kept columns come through unchanged."""
    frame = raw_frame(built.served)
    scorer = Scorer(built.served)
    for spec in scorer.inputs:
        if spec["role"] == "numeric":
            frame[spec["name"]] = pd.to_numeric(frame[spec["name"]].replace("", None))
        else:
            frame[spec["name"]] = frame[spec["name"]].replace("", None)
    frame.to_parquet(tmp_path / "rows.parquet", index=False)
    categorical = next(spec["name"] for spec in scorer.inputs if spec["role"] == "categorical")
    run_spark(
        session, verified, tmp_path / "rows.parquet", tmp_path / "out.parquet", keep=["id", categorical]
    )
    got = pd.read_parquet(tmp_path / "out.parquet").sort_values("id")
    assert list(got.columns) == ["id", categorical, "probability", "decision", "label"]
    assert got[categorical].tolist() == frame[categorical].tolist()

    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    probability, decision = scorer.score_records(records)
    assert np.abs(got["probability"].to_numpy() - probability).max() <= 1e-6
    assert got["decision"].tolist() == decision.tolist()


# --- invalid rows: the standalone scorer's rules --------------------------------------------------


def invalid_input(artifacts: Path, tmp_path: Path) -> tuple[Path, list[tuple[int, str | None]]]:
    """20 test rows with four broken ones (a bad number, a number beyond float32, too few fields,
    too many), and where each breaks, numbered as the standalone scorer numbers rows."""
    with open(artifacts / "test.csv", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for _, row in zip(range(20), reader, strict=False)]
    numeric = [s["name"] for s in Scorer(artifacts).inputs if s["role"] == "numeric"]
    first, second = header.index(numeric[0]), header.index(numeric[1])
    rows[2][first] = "12,5"
    rows[6][second] = "1e39"
    rows[9] = rows[9][:-2]
    rows[14] = [*rows[14], "extra"]
    with_id = [[str(i), *row] for i, row in enumerate(rows, 1)]
    source = write_csv(tmp_path / "broken.csv", ["id", *header], with_id)
    return source, [(3, numeric[0]), (7, numeric[1]), (10, None), (15, None)]


def test_an_invalid_row_fails_the_job_naming_its_id_and_column_as_the_scorer_does(
    session, verified, built, tmp_path
):
    source, broken = invalid_input(built.served, tmp_path)
    out = tmp_path / "scores.parquet"
    with pytest.raises(UserError) as caught:
        run_spark(session, verified, source, out, id_column="id")
    with pytest.raises(UserError) as standalone:
        score_file(Scorer(built.served), source, tmp_path / "scores.csv")
    row, column = broken[0]
    reason = str(standalone.value).split(f"column '{column}': ", 1)[1]
    assert f"row id={row}, column '{column}': {reason}" in str(caught.value)
    assert "--skip-invalid" in str(caught.value) and "\n" not in str(caught.value)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["broken.csv"]


def test_skip_invalid_leaves_out_and_lists_the_rows_the_scorer_skips(session, verified, built, tmp_path):
    source, broken = invalid_input(built.served, tmp_path)
    out = tmp_path / "scores.parquet"
    summary = run_spark(session, verified, source, out, id_column="id", skip_invalid=True)
    options = FileOptions(skip_invalid=True)
    expected = score_file(Scorer(built.served), source, tmp_path / "scores.csv", options).to_dict()
    for key in ("rows_read", "rows_scored", "rows_skipped", "positives"):
        assert summary[key] == expected[key], key
    assert [(i["row"], i["column"], i["reason"]) for i in summary["invalid"]] == [
        (f"id={i['row']}", i["column"], i["reason"]) for i in expected["invalid"]
    ]
    assert [(int(i["row"].removeprefix("id=")), i["column"]) for i in summary["invalid"]] == broken
    got = pd.read_parquet(out).assign(id=lambda f: f["id"].astype(int)).sort_values("id")
    assert got["id"].tolist() == [i for i in range(1, 21) if i not in {row for row, _ in broken}]
    with open(tmp_path / "scores.csv", newline="") as handle:
        standalone = list(csv.DictReader(handle))
    assert got["probability"].tolist() == pytest.approx(
        [float(r["probability"]) for r in standalone], abs=1e-6
    )


# --- refused before Spark runs -------------------------------------------------------------------------


def test_a_corrupted_model_is_refused_before_any_spark_job(session, served, tmp_path):
    (served / "model.onnx").write_bytes((served / "model.onnx").read_bytes() + b"\x00")
    with pytest.raises(UserError, match="refusing a model the contract does not describe"):
        spark.load_artifacts(served)
    # The command line checks the artifacts before it starts Spark: no JVM, no log, one line.
    log = tmp_path / "spark.log"
    result = cli(
        "--artifacts", str(served), "--input", str(served / "test.csv"), "--output", str(tmp_path / "o"),
        "--spark-log", str(log),
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "refusing a model the contract does not describe" in lines[0]
    assert not log.exists() and not (tmp_path / "o").exists()


def test_a_column_of_the_wrong_type_is_refused_before_any_task(session, verified, built, tmp_path):
    frame = raw_frame(built.served).head(5)
    scorer = Scorer(built.served)
    categorical = next(spec["name"] for spec in scorer.inputs if spec["role"] == "categorical")
    frame[categorical] = range(5)
    frame.to_parquet(tmp_path / "rows.parquet", index=False)
    with pytest.raises(
        UserError, match=f"column '{categorical}' is of type long, but the model reads it as text"
    ):
        run_spark(session, verified, tmp_path / "rows.parquet", tmp_path / "out.parquet")


# --- the command line -----------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "onnxship.serve.spark", "score", "--master", "local[2]", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )


def test_cli_fails_on_an_invalid_row_with_one_line(built, tmp_path):
    source, broken = invalid_input(built.served, tmp_path)
    out = tmp_path / "scores.parquet"
    result = cli(
        "--artifacts", str(built.served), "--input", str(source), "--output", str(out), "--id-column", "id"
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    row, column = broken[0]
    assert lines[0].startswith(f"error: {source} row id={row}, column '{column}': '12,5' is not a number")
    assert not out.exists()


def test_cli_skip_invalid_writes_the_rest_and_reports_the_skipped(built, tmp_path):
    source, broken = invalid_input(built.served, tmp_path)
    out, summary = tmp_path / "scores.parquet", tmp_path / "summary.json"
    out.mkdir()
    (out / "_SUCCESS").write_text("")  # an earlier output is replaced
    result = cli(
        "--artifacts", str(built.served), "--input", str(source), "--output", str(out), "--id-column", "id",
        "--skip-invalid", "--summary", str(summary), "--batch-size", "4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"scored 16 rows ({json.loads(summary.read_text())['positives']} positive) -> {out}"
    assert lines[1].startswith(f"skipped 4 invalid rows (first: row id=3 column '{broken[0][1]}': '12,5'")
    assert lines[2].startswith("spark log: ")
    assert len(pd.read_parquet(out)) == 16


# --- the module's own promises ------------------------------------------------------------------------


def test_one_scorer_per_worker_process_not_per_batch(verified, built):
    """The scoring function, run here as a worker runs it, builds the scorer once and reuses it for
    every later batch and task with the same artifacts."""
    artifacts, scorer = verified
    frame = raw_frame(built.served).drop(columns="churn", errors="ignore")
    job = worker.Job(artifacts, tuple(s["name"] for s in scorer.inputs), ("id",), "id", False, None)
    worker._SCORERS.clear()
    first = list(worker.score_batches(job, iter([frame.iloc[:10], frame.iloc[10:30]])))
    cached = worker._SCORERS[artifacts.key]
    second = list(worker.score_batches(job, iter([frame.iloc[30:40]])))
    assert len(worker._SCORERS) == 1 and worker._SCORERS[artifacts.key] is cached
    probability, _ = scorer.score_records(frame.iloc[:40].to_dict("records"))
    assert pd.concat(first + second)["probability"].tolist() == probability.tolist()


NO_PYSPARK = """
import importlib, json, pkgutil, sys
import onnxship
modules = [m.name for m in pkgutil.walk_packages(onnxship.__path__, "onnxship.")]
modules = [name for name in modules if not name.endswith("__main__")]
assert "onnxship.serve.spark.worker" in modules and "onnxship.spark" in modules
for name in modules:  # importing the Spark modules too: it must start nothing and import no pyspark
    importlib.import_module(name)
from onnxship.serve import cli
code = cli.main(["score", "--artifacts", sys.argv[1], "--input", sys.argv[2], "--output", sys.argv[3]])
found = sorted(name for name in sys.modules if name.split(".")[0] in ("pyspark", "py4j"))
print(json.dumps([len(modules), found]))
sys.exit(code)
"""


def test_core_and_standalone_scorer_never_import_pyspark(built, tmp_path):
    out = tmp_path / "scores.csv"
    args = [str(built.served), str(built.served / "test.csv"), str(out)]
    result = subprocess.run(
        [sys.executable, "-c", NO_PYSPARK, *args], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    count, found = json.loads(result.stdout.splitlines()[-1])
    assert count > 10 and found == []


LIGHT = """
import json, sys
import onnxship.serve, onnxship.serve.cli, onnxship.serve.files, onnxship.serve.scorer, onnxship.serve.summary
heavy = ("pyspark", "py4j", "pandas", "pyarrow")
light = sorted(n for n in sys.modules if n.split(".")[0] in heavy or n.startswith("onnxship.serve.spark"))
import onnxship.serve.spark.cli
spark = sorted(n for n in sys.modules if n.split(".")[0] in heavy)
print(json.dumps([light, spark]))
"""


def test_the_standalone_scorer_never_imports_the_spark_package_nor_pandas():
    result = subprocess.run([sys.executable, "-c", LIGHT], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    light, spark_package = json.loads(result.stdout)
    assert light == [] and spark_package == []  # the Spark package imports its heavy ones lazily


def test_cli_refuses_a_missing_summary_folder_or_a_bad_option_before_spark_starts(tmp_path):
    """Checked before the artifacts are read and before any JVM: one line, exit 2, no log."""
    log = tmp_path / "spark.log"
    common = ["--input", "rows.csv", "--output", str(tmp_path / "o"), "--spark-log", str(log)]
    result = cli(*common, "--summary", str(tmp_path / "no" / "s.json"))
    assert result.returncode == 2 and result.stderr.splitlines() == [
        f"error: the folder of {tmp_path / 'no' / 's.json'} does not exist: create {tmp_path / 'no'} first"
    ]
    result = cli(*common, "--batch-size", "many")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: argument --batch-size: invalid int value: 'many'")
    assert not log.exists() and not (tmp_path / "o").exists()


def test_the_deprecated_module_name_warns_and_runs_the_same_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "onnxship.spark", "score", "--artifacts", str(tmp_path / "none"),
         "--input", "rows.csv", "--output", str(tmp_path / "o")],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 2, result.stderr
    assert lines[0] == "warning: python -m onnxship.spark is deprecated: run python -m onnxship.serve.spark"
    assert lines[1].startswith("error: ") and str(tmp_path / "none") in lines[1]


CONNECT = """
import csv, json, sys
from onnxship.core.errors import UserError
from onnxship.serve import spark
artifacts, scorer = spark.load_artifacts(sys.argv[1])
session = spark.start_session(remote="local[2]")
assert type(session).__module__.startswith("pyspark.sql.connect"), type(session)
options = spark.ScoreOptions(id_column="id", batch_size=100)
summary = spark.score(session, artifacts, scorer, sys.argv[2], sys.argv[3], options).to_dict()
try:
    spark.score(session, artifacts, scorer, sys.argv[4], sys.argv[5], spark.ScoreOptions(id_column="id"))
    error = None
except UserError as exc:
    error = str(exc)
session.stop()
print(json.dumps({"summary": summary, "error": error}))
"""


def test_spark_connect_scores_the_same_and_reports_invalid_rows_the_same(built, tmp_path):
    """The same functions through a local Spark Connect server: the closure carries the model, no
    sparkContext or broadcast is needed."""
    frame = raw_frame(built.served)
    good = write_csv(tmp_path / "rows.csv", list(frame.columns), frame.values.tolist())
    bad, broken = invalid_input(built.served, tmp_path)
    args = [
        str(built.served),
        str(good),
        str(tmp_path / "out.parquet"),
        str(bad),
        str(tmp_path / "bad.parquet"),
    ]
    result = subprocess.run([sys.executable, "-c", CONNECT, *args], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["summary"]["rows_scored"] == len(frame)
    row, column = broken[0]
    assert f"row id={row}, column '{column}': '12,5' is not a number" in report["error"]
    got = pd.read_parquet(tmp_path / "out.parquet").assign(id=lambda f: f["id"].astype(int)).sort_values("id")
    with open(good, newline="") as handle:
        probability, decision = Scorer(built.served).score_records(csv.DictReader(handle))
    assert np.abs(got["probability"].to_numpy() - probability).max() <= 1e-6
    assert got["decision"].tolist() == decision.tolist()
    assert not (tmp_path / "bad.parquet").exists()

"""Batch scoring on Apache Spark with the contract the standalone scorer follows, row for row.

The driver verifies the artifacts (schema_version, both sha256s, the graph's inputs, the ONNX Runtime
version) before it starts Spark, then captures the three files' bytes in the scoring function's
closure: no ``sparkContext``, no broadcast, so the same code runs under Spark Connect. Each Python
worker process builds one ``Scorer`` from those bytes on its first batch (re-verifying them) and keeps
it in a module-level cache keyed by the sha256s, so with Spark's worker reuse (the default) a worker
pays for one onnxruntime session, not one per task or batch. Every row goes through
``Scorer.values``: the very encoder and checks of ``python -m onnxship.serve``.

Rows have no order in Spark, so a row is named by the ``--id-column`` the user gives (recommended:
a key that joins the scores back). Without one, a row is named by its position in its input
partition, which depends on how Spark split the input (file sizes, ``spark.sql.files.*``) and is only
a hint for finding it. ``monotonically_increasing_id`` is no better: it too encodes the partition.

Command line (pyspark is an optional extra: ``pip install -r requirements-spark.txt``)::

    python -m onnxship.spark score --input rows.parquet --output scores.parquet --artifacts artifacts \
        --id-column customer_id

This module must stay free of import-time side effects: Spark's Python workers import it to find
the scoring function.
"""

from __future__ import annotations

import argparse
import base64
import csv
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from onnxship.contract import artifacts as contract_files
from onnxship.contract.encode import InvalidRecord
from onnxship.contract.runtime import VERSION_CHECKS
from onnxship.core.errors import UserError
from onnxship.core.paths import FEATURES_FILE, METADATA_FILE
from onnxship.serve.files import MAX_LISTED
from onnxship.serve.scorer import Scorer

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

SCORE_COLUMNS = ("probability", "decision", "label")
INVALID_COLUMN = "_onnxship_invalid"  # skip mode: why a row is invalid (JSON), null if it was scored
CORRUPT_COLUMN = "_onnxship_corrupt"  # CSV rows whose field count differs from the header's
ERROR_TOKEN = "onnxship-error="  # how a worker's error travels inside Spark's exception text
DEFAULT_BATCH_SIZE = 10_000  # rows per Arrow batch = rows per session.run (Spark's own default)
FORMATS = {".parquet": "parquet", ".csv": "csv"}
LOOPBACK = "127.0.0.1"


# --- the artifacts, verified on the driver -----------------------------------------------------------


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


def load_artifacts(folder: str | Path, version_check: str = "strict") -> tuple[Artifacts, Scorer]:
    """Verify the artifacts in ``folder`` as the standalone scorer does and keep their bytes.

    ``contract.artifacts.load`` checks the folder (its messages name the user's files); the JSON
    bytes that will ship are then checked together with the model bytes it hashed, so a file
    replaced in between is refused rather than shipped.
    """
    folder = Path(folder)
    contract = contract_files.load(folder, version_check)
    features, metadata = (folder / FEATURES_FILE).read_bytes(), (folder / METADATA_FILE).read_bytes()
    try:
        # "off": the version was checked (and any warning shown) by the load above.
        shipped = contract_files.from_bytes(features, metadata, contract.model, "off", str(folder))
    except UserError:
        shipped = None
    if shipped is None or (shipped.features, shipped.metadata) != (contract.features, contract.metadata):
        raise UserError(f"the files in {folder} changed while they were read: run again")
    return Artifacts(contract.model, features, metadata, version_check), Scorer.from_contract(shipped)


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


# --- on the workers ---------------------------------------------------------------------------------

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


def row_name(job: Job, ids: list | None, index: int, partition: int, position: int) -> str:
    if ids is not None:
        return f"{job.id_column}={ids[index]}"
    return f"{position} of input partition {partition}"


def score_batches(job: Job, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The ``mapInPandas`` function: one input partition's batches in, scored batches out.

    Each batch is one ``session.run``. An invalid row stops the task with a WorkerError, or with
    ``skip_invalid`` is marked in INVALID_COLUMN (details for the first MAX_LISTED of a partition)
    for the driver to count and filter out.
    """
    import numpy as np
    import pandas as pd

    partition, position, listed, scorer = _partition_id(), 0, 0, None
    for frame in batches:
        if scorer is None:
            try:
                scorer = worker_scorer(job.artifacts)
            except UserError as exc:
                raise WorkerError({"message": f"on a Spark worker: {exc}"}) from None
        frame = frame.reset_index(drop=True)  # positions, whatever index the batch came with
        n = len(frame)
        columns = [frame[name].tolist() for name in job.features]
        ids = frame[job.id_column].tolist() if job.id_column else None
        problems = _row_problems(job, frame)
        good, values, invalid = [], [], [None] * n
        for i, cells in enumerate(zip(*columns, strict=True) if columns else [()] * n):
            position += 1
            try:
                if problems and i in problems:
                    raise InvalidRecord(position, None, problems[i])
                values.append(scorer.values(dict(zip(job.features, cells, strict=True)), position))
                good.append(i)
            except InvalidRecord as exc:
                where = row_name(job, ids, i, partition, position)
                found = {"row": where, "column": exc.column, "reason": exc.reason}
                message = (
                    f"row {where}" + (f", column '{exc.column}'" if exc.column else "") + f": {exc.reason}"
                )
                if not job.skip_invalid:
                    raise WorkerError({"message": message, "invalid": found}) from None
                listed += 1
                invalid[i] = (
                    json.dumps({**found, "partition": partition, "position": position})
                    if (listed <= MAX_LISTED)
                    else ""
                )
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
        yield out


def _row_problems(job: Job, frame: pd.DataFrame) -> dict[int, str]:
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


# --- on the driver: reading, planning, writing ----------------------------------------------------


def input_format(path: str, given: str | None) -> str:
    if given:
        return given
    suffix = Path(path.rstrip("/")).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    if "://" not in path and Path(path).is_dir():
        return "parquet"  # a folder of part files, as Spark writes them
    raise UserError(f"cannot tell the format of {path}: name it .parquet or .csv, or pass --input-format")


def read_input(spark: SparkSession, path: str, fmt: str) -> tuple[DataFrame, int | None]:
    """The input as a DataFrame (CSV: every column as text, as the standalone scorer reads it, plus
    a column that flags rows whose field count differs from the header's), and the header's width."""
    from pyspark.sql.types import StringType, StructField, StructType

    if "://" not in path and not Path(path).exists():
        raise UserError(f"input {path} not found")
    if fmt == "parquet":
        return spark.read.parquet(path), None
    # Parse every field of every line, also those of columns the job does not read: with pruning
    # on (Spark's default), a line with too few or too many fields is not flagged as corrupt.
    spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")
    # RFC 4180 quoting as Python's csv module reads it ("" inside quotes), no type inference.
    options = {"header": "true", "escape": '"', "inferSchema": "false", "encoding": "UTF-8"}
    header = spark.read.options(**options).csv(path).columns
    if not header:
        raise UserError(f"{path} is empty: it needs a header row naming the columns")
    schema = StructType([StructField(name, StringType()) for name in header])
    schema.add(StructField(CORRUPT_COLUMN, StringType()))
    frame = (
        spark.read.options(**options, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT_COLUMN)
        .schema(schema)
        .csv(path)
    )
    return frame, len(header)


NUMERIC_TYPES = {"byte", "short", "integer", "long", "float", "double", "string", "void"}
TEXT_TYPES = {"string", "void"}


def check_columns(
    schema: StructType, scorer: Scorer, source: str, id_column: str | None, keep: Sequence[str]
):
    """Refuse, before any task runs, an input that lacks a column or holds one of a type the
    contract cannot read (the standalone scorer would refuse every row of it)."""
    types = {field.name: field.dataType.typeName() for field in schema.fields if field.name != CORRUPT_COLUMN}
    absent = [spec["name"] for spec in scorer.inputs if spec["name"] not in types]
    if absent:
        raise UserError(
            f"{source} has no column {', '.join(repr(n) for n in absent)}: the model needs every input "
            "column (an empty cell means a missing value)"
        )
    for spec in scorer.inputs:
        kind, numeric = types[spec["name"]], spec["dtype"] == "float32"
        if kind not in (NUMERIC_TYPES if numeric else TEXT_TYPES):
            want = "a number or text" if numeric else "text (categories are strings)"
            raise UserError(
                f"{source} column '{spec['name']}' is of type {kind}, but the model reads it as {want}: "
                f"cast it (e.g. CAST({spec['name']} AS {'DOUBLE' if numeric else 'STRING'}))"
            )
    for name in [id_column, *keep]:
        if name is not None and name not in types:
            raise UserError(f"{source} has no column '{name}' to keep: choose among {sorted(types)}")
        if name in SCORE_COLUMNS:
            raise UserError(f"column '{name}' would clash with the output's {name}: rename it in the input")


def scored_frame(
    frame: DataFrame,
    artifacts: Artifacts,
    scorer: Scorer,
    *,
    source: str = "the input",
    id_column: str | None = None,
    keep: Sequence[str] | None = None,
    skip_invalid: bool = False,
    header_fields: int | None = None,
) -> DataFrame:
    """The lazily scored DataFrame: id / kept columns, probability, decision, label (and, with
    ``skip_invalid``, INVALID_COLUMN). Without ``id_column`` or ``keep``, every input column is kept."""
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

    inputs = [c for c in frame.columns if c != CORRUPT_COLUMN]
    keep = list(keep) if keep is not None else ([] if id_column else inputs)
    check_columns(frame.schema, scorer, source, id_column, keep)
    passthrough = list(dict.fromkeys([c for c in [id_column, *keep] if c]))
    features = tuple(spec["name"] for spec in scorer.inputs)
    needed = list(dict.fromkeys([*passthrough, *features]))
    if CORRUPT_COLUMN in frame.columns:
        needed.append(CORRUPT_COLUMN)
    fields = {field.name: field for field in frame.schema.fields}
    schema = StructType([fields[name] for name in passthrough])
    schema.add(StructField("probability", DoubleType(), True))
    schema.add(StructField("decision", BooleanType(), True))
    schema.add(StructField("label", StringType(), True))
    if skip_invalid:
        schema.add(StructField(INVALID_COLUMN, StringType(), True))
    job = Job(artifacts, features, tuple(passthrough), id_column, skip_invalid, header_fields)
    # A partial of a module-level function pickles by reference: the workers import this module
    # (hence no side effects at import) and share its scorer cache across tasks.
    return frame.select(*needed).mapInPandas(functools.partial(score_batches, job), schema)


def score(
    spark: SparkSession,
    artifacts: Artifacts,
    scorer: Scorer,
    input_path: str,
    output_path: str,
    *,
    input_format_name: str | None = None,
    id_column: str | None = None,
    keep: Sequence[str] | None = None,
    skip_invalid: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict:
    """Score a CSV or Parquet input into a Parquet output and return the summary.

    A local output appears only if the whole input was scored (written to a temporary sibling and
    renamed). An invalid row fails the job with a UserError naming it, or with ``skip_invalid`` is
    left out and counted: the counts come from an ``observe`` on the same job, not a second pass.
    It sets two settings of ``spark``'s session: ``spark.sql.execution.arrow.maxRecordsPerBatch``
    (``batch_size``) and, for CSV input, ``spark.sql.csv.parser.columnPruning.enabled=false``.
    """
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    fmt = input_format(input_path, input_format_name)
    target = _local_output(output_path, input_path)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_size))
    frame, header_fields = read_input(spark, input_path, fmt)
    scored = scored_frame(
        frame,
        artifacts,
        scorer,
        source=input_path,
        id_column=id_column,
        keep=keep,
        skip_invalid=skip_invalid,
        header_fields=header_fields,
    )
    observation = Observation("onnxship")
    metrics = [
        F.count(F.lit(1)).alias("rows_read"),
        F.sum(F.col("decision").cast("long")).alias("positives"),
    ]
    if skip_invalid:
        metrics += [
            F.count(F.col(INVALID_COLUMN)).alias("rows_skipped"),
            F.collect_list(F.when(F.col(INVALID_COLUMN) != "", F.col(INVALID_COLUMN))).alias("invalid"),
        ]
    scored = scored.observe(observation, *metrics)
    if skip_invalid:
        scored = scored.filter(F.col(INVALID_COLUMN).isNull()).drop(INVALID_COLUMN)
    destination = str(target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")) if target else output_path
    try:
        scored.write.mode("error").parquet(destination)
    except Exception as exc:
        if target:
            shutil.rmtree(destination, ignore_errors=True)
        error = worker_error(exc)
        if error is None:
            raise
        if "invalid" in error:
            raise UserError(
                f"{input_path} {error['message']}; fix the input, "
                "or pass --skip-invalid to leave such rows out"
            ) from None
        raise UserError(error["message"]) from None
    if target:
        _replace_dir(Path(destination), target)
    found = observation.get
    invalid = sorted(
        (json.loads(i) for i in found.get("invalid") or []), key=lambda i: (i["partition"], i["position"])
    )
    skipped = int(found.get("rows_skipped") or 0)
    rows_read = int(found["rows_read"])
    return {
        "input": input_path,
        "output": output_path,
        "rows_read": rows_read,
        "rows_scored": rows_read - skipped,
        "rows_skipped": skipped,
        # Skipped rows carry decision False: the sum over all rows is the sum over the scored ones.
        "positives": int(found["positives"] or 0),
        "invalid": [{k: i[k] for k in ("row", "column", "reason")} for i in invalid[:MAX_LISTED]],
    }


def worker_error(exc: BaseException) -> dict | None:
    """The error a worker raised (WorkerError), found in the text of Spark's exception, or None."""
    match = re.search(re.escape(ERROR_TOKEN) + r"([A-Za-z0-9_=-]+)", str(exc))
    if match is None:
        return None
    return json.loads(base64.urlsafe_b64decode(match[1]))


def _local_output(output: str, source: str) -> Path | None:
    """The output as a local folder (None for a URI such as s3a://, written in place by Spark's
    commit protocol), refused if it would overwrite something that is not an earlier output."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", output) and not output.startswith("file://"):
        return None
    target = Path(output.removeprefix("file://")).absolute()
    if "://" not in source and target == Path(source.removeprefix("file://")).absolute():
        raise UserError("the output is the input: write the scores to another path")
    if target.exists() and not (target / "_SUCCESS").is_file():
        raise UserError(
            f"{target} exists and is not an earlier Spark output (no _SUCCESS file): "
            "choose another --output or remove it"
        )
    return target


def _replace_dir(new: Path, target: Path) -> None:
    """Put the finished output in place; an earlier output is moved away first, then removed."""
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


# --- the session ------------------------------------------------------------------------------------


def local_conf(master: str) -> dict[str, str]:
    """Spark settings for a session this process starts. For a local master: bind to 127.0.0.1
    (the host name may resolve to another interface) and keep the UI and console bar off."""
    conf = {"spark.ui.showConsoleProgress": "false", "spark.python.worker.reuse": "true"}
    if master.startswith("local"):
        conf |= {
            "spark.driver.bindAddress": LOOPBACK,
            "spark.driver.host": LOOPBACK,
            "spark.ui.enabled": "false",
        }
    return conf


def start_session(master: str | None = None, remote: str | None = None, conf: dict[str, str] | None = None):
    """A SparkSession: Spark Connect if ``remote`` (``sc://host:port``, or ``local[N]`` for a Connect
    server this process starts), the one spark-submit set up if this process was launched by it, else
    a new one on ``master`` (default ``local[*]``). Whatever this process starts locally binds to
    127.0.0.1 and runs its Python workers on this interpreter."""
    from pyspark.sql import SparkSession

    launched = "PYSPARK_GATEWAY_PORT" in os.environ and master is None and not remote  # by spark-submit
    master = master or "local[*]"
    local = (remote or master).startswith("local") and not launched
    settings = local_conf("local" if local else "") if (local or not remote) else {}
    if local:
        # Read by the JVM this call launches: executors and block manager bind to loopback too.
        os.environ["SPARK_LOCAL_IP"] = LOOPBACK
        # Workers run this interpreter (the default, `python3` on PATH, may lack the packages).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        _add_to_pythonpath(Path(__file__).resolve().parents[1])
        if remote:
            settings["spark.connect.grpc.binding.address"] = LOOPBACK
    if remote:
        builder = SparkSession.builder.remote(remote)
    else:
        builder = SparkSession.builder.appName("onnxship-score")
        if not launched:
            builder = builder.master(master)
    for key, value in {**settings, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _add_to_pythonpath(folder: Path) -> None:
    """Let the workers, started by the JVM from its environment, import this package."""
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(folder) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(folder), *parts])


# --- command line ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m onnxship.spark",
        description="Score a CSV or Parquet input on Apache Spark with model.onnx and its JSON contract.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    score_cmd = commands.add_parser("score", help="score an input into a Parquet output")
    score_cmd.add_argument("--input", required=True, help=".parquet (file or folder) or .csv with a header")
    score_cmd.add_argument("--output", required=True, help="Parquet folder to write (replaced only if done)")
    score_cmd.add_argument(
        "--artifacts", default="artifacts", help="folder with model.onnx and the JSON files"
    )
    score_cmd.add_argument("--input-format", choices=["parquet", "csv"], help="default: from the suffix")
    score_cmd.add_argument("--master", help="Spark master (default: local[*], or spark-submit's)")
    score_cmd.add_argument("--remote", help="Spark Connect URL (sc://host:15002) instead of --master")
    score_cmd.add_argument("--id-column", help="a column naming each row: kept, and used in error messages")
    score_cmd.add_argument(
        "--keep",
        help="comma-separated columns to copy to the output (default: all "
        "input columns, or only --id-column if given)",
    )
    score_cmd.add_argument(
        "--skip-invalid", action="store_true", help="leave invalid rows out and report them"
    )
    score_cmd.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"rows per Arrow batch and session.run (default: {DEFAULT_BATCH_SIZE})",
    )
    score_cmd.add_argument("--version-check", choices=VERSION_CHECKS, default="strict")
    score_cmd.add_argument("--summary", help="also write a JSON summary (counts, first invalid rows) here")
    score_cmd.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting")
    score_cmd.add_argument(
        "--spark-log", help="where Spark's own log goes (default: a temporary file; - for stderr)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out, log = sys.stderr, None
    warnings.showwarning = lambda message, *_, **__: print(f"warning: {message}", file=out)
    try:
        conf = dict(_setting(item) for item in args.conf)
        keep = [c.strip() for c in args.keep.split(",") if c.strip()] if args.keep else None
        input_format(args.input, args.input_format)
        # Before Spark starts: bad artifacts cost no JVM and no task.
        artifacts, scorer = load_artifacts(args.artifacts, args.version_check)
        out, log = _quiet_spark(args.spark_log)
        spark = start_session(args.master, args.remote, conf)
        try:
            summary = score(
                spark,
                artifacts,
                scorer,
                args.input,
                args.output,
                input_format_name=args.input_format,
                id_column=args.id_column,
                keep=keep,
                skip_invalid=args.skip_invalid,
                batch_size=args.batch_size,
            )
        finally:
            spark.stop()
        if args.summary:
            Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n")
    except UserError as exc:
        print(f"error: {exc}", file=out)
        return 2
    except Exception as exc:  # Spark's own failure: its first line here, the rest in its log
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: Spark failed: {first[:300]} (Spark's log: {log or 'above'})", file=out)
        return 1
    print(
        f"scored {summary['rows_scored']:,} rows ({summary['positives']:,} positive) -> {args.output}",
        file=out,
    )
    if summary["rows_skipped"]:
        first = "; ".join(
            f"row {i['row']}" + (f" column '{i['column']}'" if i["column"] else "") + f": {i['reason']}"
            for i in summary["invalid"][:3]
        )
        print(f"skipped {summary['rows_skipped']:,} invalid rows (first: {first})", file=out)
    if log:
        print(f"spark log: {log}", file=out)
    return 0


def _setting(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UserError(f"--conf {item!r} is not KEY=VALUE")
    return key, value


def _quiet_spark(log: str | None) -> tuple[IO[str], str | None]:
    """Send this process's stderr (and so the JVM's and the workers', which inherit it) to a log
    file, and return a handle on the real stderr for this command's own lines."""
    if log == "-":
        return sys.stderr, None
    if log is None:
        fd, log = tempfile.mkstemp(prefix="onnxship-spark-", suffix=".log")
    else:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stderr.flush()
    real = os.fdopen(os.dup(2), "w", buffering=1)
    os.dup2(fd, 2)
    os.close(fd)
    return real, log


if __name__ == "__main__":
    # Run through the package's module, not __main__: functions defined in __main__ would be pickled
    # by value, and each task would get its own copy of the scorer cache.
    from onnxship.spark import main as _main

    sys.exit(_main())

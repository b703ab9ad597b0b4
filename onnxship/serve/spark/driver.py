"""On the Spark driver: verifying the artifacts, reading the input, checking its columns, the lazily
scored DataFrame, and ``score``, which writes it and returns the run's ScoreSummary.

Rows have no order in Spark, so a row is named by the ``id_column`` the user gives (recommended: a
key that joins the scores back). Without one, a row is named by its position in its input
partition, which depends on how Spark split the input (file sizes, ``spark.sql.files.*``) and is only
a hint for finding it. ``monotonically_increasing_id`` is no better: it too encodes the partition.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from onnxship.contract import artifacts as contract_files
from onnxship.core.errors import UserError
from onnxship.core.paths import FEATURES_FILE, METADATA_FILE
from onnxship.serve.scorer import Scorer
from onnxship.serve.spark.worker import (
    CORRUPT_COLUMN,
    INVALID_COLUMN,
    Artifacts,
    Job,
    score_batches,
    worker_error,
)
from onnxship.serve.summary import MAX_LISTED, ScoreSummary, require_columns, same_file

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

SCORE_COLUMNS = ("probability", "decision", "label")
DEFAULT_BATCH_SIZE = 10_000  # rows per Arrow batch = rows per session.run (Spark's own default)
FORMATS = {".parquet": "parquet", ".csv": "csv"}
NUMERIC_TYPES = {"byte", "short", "integer", "long", "float", "double", "string", "void"}
TEXT_TYPES = {"string", "void"}


@dataclass(frozen=True)
class ScoreOptions:
    """The user's choices for one scoring job (the command line's options of the same names)."""

    id_column: str | None = None  # names each row in errors; kept in the output
    keep: Sequence[str] | None = None  # copied to the output (default: all, or only id_column if given)
    skip_invalid: bool = False  # leave invalid rows out and count them, instead of failing
    batch_size: int = DEFAULT_BATCH_SIZE  # rows per Arrow batch and session.run (score only)
    input_format: str | None = None  # "parquet" or "csv"; default: from the suffix (score only)


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


# --- reading and checking the input ------------------------------------------------------------------


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


def check_columns(
    schema: StructType, scorer: Scorer, source: str, id_column: str | None, keep: Sequence[str]
) -> None:
    """Refuse, before any task runs, an input that lacks a column or holds one of a type the
    contract cannot read (the standalone scorer would refuse every row of it)."""
    types = {field.name: field.dataType.typeName() for field in schema.fields if field.name != CORRUPT_COLUMN}
    require_columns(source, types, [spec["name"] for spec in scorer.inputs])
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


# --- the scored frame ------------------------------------------------------------------------------


def scored_frame(
    frame: DataFrame,
    artifacts: Artifacts,
    scorer: Scorer,
    options: ScoreOptions | None = None,
    *,
    source: str = "the input",
    header_fields: int | None = None,
) -> DataFrame:
    """The lazily scored DataFrame: id / kept columns, probability, decision, label (and, with
    ``skip_invalid``, INVALID_COLUMN). Without ``id_column`` or ``keep``, every input column is kept.
    ``batch_size`` and ``input_format`` of ``options`` are not used here (see ``score``)."""
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

    options = options or ScoreOptions()
    id_column = options.id_column
    inputs = [c for c in frame.columns if c != CORRUPT_COLUMN]
    keep = list(options.keep) if options.keep is not None else ([] if id_column else inputs)
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
    if options.skip_invalid:
        schema.add(StructField(INVALID_COLUMN, StringType(), True))
    job = Job(artifacts, features, tuple(passthrough), id_column, options.skip_invalid, header_fields)
    # A partial of a module-level function pickles by reference: the workers import its module
    # (hence no side effects at import) and share its scorer cache across tasks.
    return frame.select(*needed).mapInPandas(functools.partial(score_batches, job), schema)


# --- scoring an input into an output ---------------------------------------------------------------


def score(
    spark: SparkSession,
    artifacts: Artifacts,
    scorer: Scorer,
    input_path: str,
    output_path: str,
    options: ScoreOptions | None = None,
) -> ScoreSummary:
    """Score a CSV or Parquet input into a Parquet output and return the summary.

    A local output appears only if the whole input was scored (written to a temporary sibling and
    renamed). An invalid row fails the job with a UserError naming it, or with ``skip_invalid`` is
    left out and counted: the counts come from an ``observe`` on the same job, not a second pass.
    It sets two settings of ``spark``'s session: ``spark.sql.execution.arrow.maxRecordsPerBatch``
    (``batch_size``) and, for CSV input, ``spark.sql.csv.parser.columnPruning.enabled=false``.
    """
    from pyspark.sql import Observation

    options = options or ScoreOptions()
    if options.batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {options.batch_size}")
    fmt = input_format(input_path, options.input_format)
    target = _local_output(output_path, input_path)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(options.batch_size))
    frame, header_fields = read_input(spark, input_path, fmt)
    scored = scored_frame(frame, artifacts, scorer, options, source=input_path, header_fields=header_fields)
    observation = Observation("onnxship")
    scored = _observed(scored, observation, options.skip_invalid)
    destination = str(target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")) if target else output_path
    try:
        scored.write.mode("error").parquet(destination)
    except Exception as exc:
        if target:
            shutil.rmtree(destination, ignore_errors=True)
        _raise_worker_error(exc, input_path)
        raise
    if target:
        _replace_dir(Path(destination), target)
    return _summary(observation.get, input_path, output_path)


def _observed(scored: DataFrame, observation, skip_invalid: bool) -> DataFrame:
    """The frame with its counts observed during the write (and, when skipping, invalid rows
    counted, listed, then filtered out)."""
    from pyspark.sql import functions as F

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
    return scored


def _raise_worker_error(exc: Exception, input_path: str) -> None:
    """Re-raise a worker's error as one UserError line; return if ``exc`` carries none."""
    error = worker_error(exc)
    if error is None:
        return
    if "invalid" in error:
        raise UserError(
            f"{input_path} {error['message']}; fix the input, or pass --skip-invalid to leave such rows out"
        ) from None
    raise UserError(error["message"]) from None


def _summary(found: dict, input_path: str, output_path: str) -> ScoreSummary:
    """The run's summary from the observed metrics: the first invalid rows by partition, position."""
    invalid = sorted(
        (json.loads(i) for i in found.get("invalid") or []), key=lambda i: (i["partition"], i["position"])
    )
    skipped = int(found.get("rows_skipped") or 0)
    rows_read = int(found["rows_read"])
    return ScoreSummary(
        input=input_path,
        output=output_path,
        rows_read=rows_read,
        rows_scored=rows_read - skipped,
        rows_skipped=skipped,
        # Skipped rows carry decision False: the sum over all rows is the sum over the scored ones.
        positives=int(found["positives"] or 0),
        invalid=[{k: i[k] for k in ("row", "column", "reason")} for i in invalid[:MAX_LISTED]],
    )


def _local_output(output: str, source: str) -> Path | None:
    """The output as a local folder (None for a URI such as s3a://, written in place by Spark's
    commit protocol), refused if it would overwrite something that is not an earlier output."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", output) and not output.startswith("file://"):
        return None
    target = Path(output.removeprefix("file://")).absolute()
    local = "://" not in source or source.startswith("file://")
    if local and same_file(target, Path(source.removeprefix("file://"))):  # symlinks, "a/../b" too
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

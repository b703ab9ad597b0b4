"""Batch scoring on Apache Spark with the contract the standalone scorer follows, row for row.

The driver verifies the artifacts (schema_version, both sha256s, the graph's inputs, the ONNX Runtime
version) before it starts Spark, then captures the three files' bytes in the scoring function's
closure: no ``sparkContext``, no broadcast, so the same code runs under Spark Connect. Each Python
worker process builds one ``Scorer`` from those bytes on its first batch (re-verifying them) and keeps
it in a module-level cache keyed by the sha256s, so with Spark's worker reuse (the default) a worker
pays for one onnxruntime session, not one per task or batch. Every row goes through
``Scorer.values``: the very encoder and checks of ``python -m onnxship.serve``.

- ``worker``: what runs in the executors (the scorer from the shipped bytes, ``score_batches``).
- ``driver``: reading the input, checking its columns, the scored DataFrame, writing the output.
- ``session``: starting a SparkSession or a Spark Connect one (local settings, the workers' path).
- ``cli``: ``python -m onnxship.serve.spark score ...``.

The one part of ``serve/`` that may import pyspark, pandas and pyarrow, and only inside functions:
importing any of these modules starts nothing and imports none of them (Spark's Python workers import
``worker`` to find the scoring function; ``onnxship.serve`` never imports this package).
"""

from onnxship.serve.spark.driver import (
    DEFAULT_BATCH_SIZE,
    ScoreOptions,
    input_format,
    load_artifacts,
    read_input,
    score,
    scored_frame,
)
from onnxship.serve.spark.session import start_session
from onnxship.serve.spark.worker import Artifacts

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Artifacts",
    "ScoreOptions",
    "input_format",
    "load_artifacts",
    "read_input",
    "score",
    "scored_frame",
    "start_session",
]

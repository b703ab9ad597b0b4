"""Throughput and CPU cost of Spark batch scoring (onnxship.serve.spark) on one machine.

Starts one local session, then scores the same input ``--runs`` times (the first run pays for the
Python workers and their onnxruntime sessions; later runs reuse them). CPU is the user + system
time of this process, the JVM and every Python worker (psutil, the whole process tree, including
children that exited). Prints one JSON object.

    python tools/spark_bench.py --input rows.csv --artifacts artifacts --master 'local[2]' --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil

from onnxship.serve import spark


def tree_cpu() -> float:
    """CPU seconds of this process and all its descendants, alive or reaped."""
    total = 0.0
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        try:
            t = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=spark.DEFAULT_BATCH_SIZE)
    parser.add_argument("--max-partition-mb", type=int, help="spark.sql.files.maxPartitionBytes")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    conf = dict(item.split("=", 1) for item in args.conf)
    if args.max_partition_mb:
        conf["spark.sql.files.maxPartitionBytes"] = str(args.max_partition_mb << 20)
    artifacts, scorer = spark.load_artifacts(args.artifacts)
    cpu0, start = tree_cpu(), time.perf_counter()
    session = spark.start_session(args.master, conf=conf)
    session_start = time.perf_counter() - start, tree_cpu() - cpu0
    frame, _ = spark.read_input(session, args.input, spark.input_format(args.input, None))
    partitions = frame.rdd.getNumPartitions()
    work = Path(tempfile.mkdtemp(prefix="spark-bench-"))
    runs = []
    try:
        for i in range(args.runs):
            out = work / f"out{i}"
            cpu0, start = tree_cpu(), time.perf_counter()
            options = spark.ScoreOptions(keep=["customer_id"], batch_size=args.batch_size)
            summary = spark.score(session, artifacts, scorer, args.input, str(out), options)
            wall, cpu = time.perf_counter() - start, tree_cpu() - cpu0
            rows = summary.rows_scored
            runs.append(
                {
                    "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                    "rows": rows,
                    "rows_per_s": round(rows / wall),
                    "cpu_us_per_row": round(1e6 * cpu / rows, 2),
                }
            )
            shutil.rmtree(out)
    finally:
        session.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        json.dumps(
            {
                "master": args.master,
                "input": args.input,
                "partitions": partitions,
                "batch_size": args.batch_size,
                "conf": conf,
                "session_start_s": round(session_start[0], 2),
                "session_start_cpu_s": round(session_start[1], 2),
                "runs": runs,
                "load_average": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()

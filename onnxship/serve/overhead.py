"""The scorer's own cost: ``score_record`` against a bare ``session.run`` at batch 1."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onnxship.core.errors import UserError
from onnxship.serve.scorer import Scorer

OVERHEAD_GOAL = 0.30  # the scorer's own path may cost at most 30 % more than a bare session.run


def overhead(
    artifacts_dir: str | Path,
    rows: Sequence[Mapping[str, Any]],
    repetitions: int = 2000,
    warmup: int = 200,
    threads: int = 1,
    version_check: str = "strict",
) -> dict:
    """p50 latency at batch 1 of ``score_record`` (record -> validated feeds -> run -> decision)
    against a bare ``session.run`` on feeds built beforehand, on the same session and rows.

    The two are timed alternately, call by call, so that drift in CPU speed hits both alike, and
    which goes first alternates too. They score different rows in each pair: a model that has just
    scored a row scores it again faster (its tree paths are in cache), which would flatter the second.
    The goal is ``ratio <= 1.3`` (at most 30 % overhead).
    """
    if not rows or repetitions < 1:
        raise UserError("overhead needs at least one row and one repetition")
    scorer = Scorer(artifacts_dir, version_check=version_check, threads=threads)
    records = list(rows)
    prebuilt = [scorer.feeds([scorer.values(record, i)]) for i, record in enumerate(records, 1)]
    run, outputs, n = scorer.session.run, scorer.outputs, len(records)
    for i in range(warmup):
        run(outputs, prebuilt[i % n])
        scorer.score_record(records[i % n])
    bare = np.empty(repetitions, dtype=np.float64)
    own = np.empty(repetitions, dtype=np.float64)
    clock, half = time.perf_counter_ns, n // 2
    for i in range(repetitions):
        feeds, record = prebuilt[i % n], records[(i + half) % n]
        if i % 2 == 0:
            start = clock()
            run(outputs, feeds)
            middle = clock()
            scorer.score_record(record)
            end = clock()
            bare[i], own[i] = middle - start, end - middle
        else:
            start = clock()
            scorer.score_record(record)
            middle = clock()
            run(outputs, feeds)
            end = clock()
            own[i], bare[i] = middle - start, end - middle
    bare_p50, own_p50 = float(np.median(bare)) / 1e3, float(np.median(own)) / 1e3
    ratio = own_p50 / bare_p50
    return {
        "batch_size": 1,
        "rows": n,
        "repetitions": repetitions,
        "threads": threads,
        "session_run_p50_us": round(bare_p50, 2),
        "scorer_p50_us": round(own_p50, 2),
        "ratio": round(ratio, 3),
        "overhead_pct": round(100 * (ratio - 1), 1),
        "goal_overhead_pct": round(100 * OVERHEAD_GOAL, 1),
        "meets_goal": ratio <= 1 + OVERHEAD_GOAL,
    }

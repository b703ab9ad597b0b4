"""Latency and throughput of one scoring function, measured the same way for every backend."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd


def batch_of(frame: pd.DataFrame, size: int) -> pd.DataFrame:
    """``size`` rows taken in order from ``frame``, wrapping around if it is shorter."""
    return frame.iloc[np.arange(size) % len(frame)].reset_index(drop=True)


def measure(call: Callable[[], object], batch_size: int, warmup: int, repetitions: int) -> dict:
    """Time ``repetitions`` calls after ``warmup`` untimed ones; latency in microseconds."""
    for _ in range(warmup):
        call()
    samples = np.empty(repetitions, dtype=np.float64)
    for i in range(repetitions):
        start = time.perf_counter_ns()
        call()
        samples[i] = (time.perf_counter_ns() - start) / 1e3
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])
    return {
        "batch_size": batch_size,
        "samples": repetitions,
        "p50_us": round(float(p50), 2),
        "p95_us": round(float(p95), 2),
        "p99_us": round(float(p99), 2),
        "rows_per_s": round(batch_size / (float(samples.mean()) / 1e6), 1),
    }

"""Dynamic micro-batching: the records of concurrent requests share one ``session.run``.

One asyncio queue and one worker task. A request puts its encoded rows on the queue and awaits its
future; the worker takes the first waiting request, adds whatever else is queued (up to
``max_rows`` records), and runs the batch in one thread (``run_in_executor``), so the event loop goes on
reading and checking other requests meanwhile (a batch of a few rows runs on the loop itself, which
is quicker than handing it to the thread and back). Under concurrent load (the last batch held more
than one request, or several are queued) it first waits up to ``wait_s`` for more; a lone client is
never delayed. A request is never split across batches unless it alone holds more than ``max_rows``.

Why the answers are the same as unbatched, bit for bit: every row of a batch goes through the same
float32 graph independently (tree ensembles and linear models compute each row on its own with one
intra-op thread, the default), and the decision is taken per row in float64.
tests/test_http_server.py compares batched answers with single-record ones with ``==``. A
dynamically quantized INT8 graph is the exception: it computes each call's activation ranges from the
whole batch, so a row's score depends on its neighbours; for it the server runs each request on its
own (``across_requests=False``), as the CLI scorer runs each of its batches. So does more than one
intra-op thread: ONNX Runtime then splits a tree ensemble's work differently by batch size, and a
row's sum may differ in the last float32 bit (server.MANY_THREADS).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from onnxship.serve.scorer import Scorer


@dataclass
class _Job:
    rows: list[list]  # the records' converted values (Encoder.values), in request order
    future: asyncio.Future = field(repr=False)


@dataclass(frozen=True)
class BatchPolicy:
    wait_s: float = 0.002  # how long a batch waits for more records under concurrent load
    max_rows: int = 1024  # records per session.run at most (a larger request runs in chunks)
    across_requests: bool = True  # False: each request is its own session.run (dynamic INT8)
    # A batch of at most this many rows runs on the event loop itself (tens of microseconds): two
    # thread switches cost more, on 2 busy cores 1.3x the requests/s at 16 connections (405 -> 525).
    inline_rows: int = 16


@dataclass
class BatchStats:
    batches: int = 0
    requests: int = 0
    rows: int = 0
    largest: int = 0  # most records in one session.run

    def as_dict(self) -> dict:
        return dict(vars(self))


class Batcher:
    """Scores rows of concurrent requests in shared batches; ``start`` in the server's event loop."""

    def __init__(self, scorer: Scorer, policy: BatchPolicy) -> None:
        self.scorer, self.policy = scorer, policy
        self.stats = BatchStats()
        # One thread: one session.run at a time, while the next batch gathers (ONNX Runtime's own
        # intra-op threads are --threads).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx")
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._held: _Job | None = None  # taken from the queue but left for the next batch
        self._busy = False  # the last batch held more than one request

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def score(self, rows: list[list]) -> tuple[list[float], list[bool]]:
        """(probabilities, decisions) of ``rows``, in order, computed in a shared batch."""
        if not rows:
            return [], []
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(rows, future))
        return await future

    async def _work(self) -> None:
        while True:
            jobs = await self._gather()
            loop = asyncio.get_running_loop()
            try:
                if sum(len(job.rows) for job in jobs) <= self.policy.inline_rows:
                    results = self._run(jobs)  # a few rows: quicker than two thread switches
                else:
                    results = await loop.run_in_executor(self._executor, self._run, jobs)
            except Exception as exc:  # an ONNX Runtime failure: each request gets it (500)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, result in zip(jobs, results, strict=True):
                if not job.future.done():  # a client that went away cancelled its future
                    job.future.set_result(result)

    async def _gather(self) -> list[_Job]:
        """The next batch: the first waiting request and what else fits in ``max_rows``."""
        first = self._held or await self._queue.get()
        self._held = None
        jobs, rows = [first], len(first.rows)
        if not self.policy.across_requests:
            return jobs
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.policy.wait_s
        wait = self._busy or not self._queue.empty()
        while rows < self.policy.max_rows:
            if self._queue.empty():
                left = deadline - loop.time()
                if not wait or left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            if rows + len(job.rows) > self.policy.max_rows:
                self._held = job  # whole requests only: it leads the next batch
                break
            jobs.append(job)
            rows += len(job.rows)
        self._busy = len(jobs) > 1
        return jobs

    def _run(self, jobs: list[_Job]) -> list[tuple[list[float], list[bool]]]:
        """In the worker thread: one session.run per ``max_rows`` records, split back per request."""
        rows = [row for job in jobs for row in job.rows]
        size = self.policy.max_rows
        scorer = self.scorer
        parts = [scorer.probabilities(scorer.feeds(rows[i : i + size])) for i in range(0, len(rows), size)]
        probability = np.concatenate(parts)
        decision = scorer.decide(probability)
        stats = self.stats
        stats.batches += len(parts)
        stats.requests += len(jobs)
        stats.rows += len(rows)
        stats.largest = max(stats.largest, min(len(rows), size))
        results, start = [], 0
        p_list, d_list = probability.tolist(), decision.tolist()
        for job in jobs:
            end = start + len(job.rows)
            results.append((p_list[start:end], d_list[start:end]))
            start = end
        return results

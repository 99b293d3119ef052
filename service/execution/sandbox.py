"""Sandbox backends: where programs run. LocalSandbox (in-process pool) is the default."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from sandbox_worker import languages
from sandbox_worker.executor import Executor
from sandbox_worker.protocol import Job, JobResult
from service.errors import DeadlineExceeded, Overloaded
from service.metrics import Metrics

log = logging.getLogger("codereward.sandbox")


class SandboxBackend(Protocol):
    """Runs jobs; the service never cares whether they run here or on a worker fleet."""

    async def execute(self, jobs: Sequence[Job], *, deadline_s: float) -> list[JobResult]:
        """Results in job order; 429 when over capacity, 504 past `deadline_s` (seconds)."""
        ...

    async def ready(self) -> bool:
        """True when jobs can be run now."""
        ...

    def describe(self) -> dict[str, str]:
        """Backend kind and isolation level, for /readyz and logs."""
        ...

    def languages(self) -> dict[str, str] | None:
        """Languages the backend can run, with their toolchain versions (None: not known
        yet, e.g. no worker has announced itself)."""
        ...

    async def aclose(self) -> None:
        """Stop accepting work and release resources."""
        ...


def record_results(metrics: Metrics, results: Sequence[JobResult]) -> None:
    """Count sandbox outcomes by status (one labelled increment per status seen)."""
    runs = Counter(result.status.value for result in results)
    tests = Counter(test.status.value for result in results for test in result.tests)
    for status, n in runs.items():
        metrics.sandbox_runs.labels(status).inc(n)
    for status, n in tests.items():
        metrics.sandbox_tests.labels(status).inc(n)


class LocalSandbox:
    """In-process executor pool: a warm zygote forks one isolated child per program."""

    def __init__(self, executor: Executor, *, workers: int, max_pending: int,
                 metrics: Metrics) -> None:
        self._executor = executor
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")
        self._max_pending = max_pending
        self._pending = 0
        self._metrics = metrics
        self._closed = False

    async def execute(self, jobs: Sequence[Job], *, deadline_s: float) -> list[JobResult]:
        if self._pending + len(jobs) > self._max_pending:
            raise Overloaded(f"sandbox queue full ({self._pending} programs pending)",
                             retry_after_s=2)
        loop = asyncio.get_running_loop()
        self._pending += len(jobs)
        self._metrics.sandbox_in_flight.inc(len(jobs))
        start = time.perf_counter()
        futures = [loop.run_in_executor(self._threads, self._executor.run, job) for job in jobs]
        # asyncio.wait, not wait_for(gather(...)): a cancelled gather keeps an exception that
        # nobody retrieves (logged as an error when a sibling task fails, e.g. /rerank's 429)
        try:
            _, pending = await asyncio.wait(futures, timeout=deadline_s)
        except asyncio.CancelledError:
            for fut in futures:
                fut.cancel()  # jobs not yet started are dropped; running ones end at their limits
            raise
        try:
            if pending:
                for fut in futures:
                    fut.cancel()
                raise DeadlineExceeded(f"execution did not finish within {deadline_s:.1f}s")
            results = [fut.result() for fut in futures]
        finally:
            self._pending -= len(jobs)
            self._metrics.sandbox_in_flight.dec(len(jobs))
            self._metrics.sandbox_duration.observe(time.perf_counter() - start)
        record_results(self._metrics, results)
        return list(results)

    async def ready(self) -> bool:
        return not self._closed and self._executor.healthy()

    def describe(self) -> dict[str, str]:
        return {"backend": "local", "isolation": self._executor.isolation,
                "seccomp": "on" if self._executor.seccomp else "off",
                "memory_bound": self._executor.memory_bound,
                "cpu_bound": self._executor.cpu_bound,
                "languages": ",".join(languages.available())}

    def languages(self) -> dict[str, str] | None:
        return languages.available()

    async def aclose(self) -> None:
        self._closed = True
        self._threads.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._executor.close)

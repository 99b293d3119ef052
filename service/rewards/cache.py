"""Verdict cache for /get_reward: identical programs run once (GRPO groups, trainer retries).

Keyed by `Job.job_id()` (code, tests, limits, executor version). A job already running is
joined rather than started again, so OpenRLHF's retry of a slow request, or eight identical
samples of one GRPO group, cost one run. Timeouts and kills are never stored: they may come
from load rather than from the program.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from sandbox_worker.protocol import Job, JobResult, RunStatus
from service.errors import NotReady

Execute = Callable[[list[Job]], Awaitable[list[JobResult]]]
_UNSTABLE = frozenset({RunStatus.TIMEOUT, RunStatus.KILLED})


class VerdictCache:
    """LRU of finished verdicts plus the runs in flight; one per app (event-loop bound)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._done: OrderedDict[str, JobResult] = OrderedDict()
        self._running: dict[str, asyncio.Future[JobResult]] = {}
        self.hits = 0
        self.joined = 0

    def _store(self, key: str, result: JobResult) -> None:
        if self.max_entries <= 0 or result.status in _UNSTABLE:
            return
        self._done[key] = result
        self._done.move_to_end(key)
        while len(self._done) > self.max_entries:
            self._done.popitem(last=False)

    async def run(self, jobs: Sequence[Job], execute: Execute) -> list[JobResult]:
        """Results in job order; only jobs neither cached nor running are executed."""
        keys = [job.job_id() for job in jobs]
        found: dict[str, JobResult] = {}
        waits: dict[str, asyncio.Future[JobResult]] = {}
        mine: dict[str, Job] = {}
        loop = asyncio.get_running_loop()
        for key, job in zip(keys, jobs, strict=True):
            if key in found or key in waits or key in mine:
                continue
            if key in self._done:
                self._done.move_to_end(key)
                found[key] = self._done[key]
                self.hits += 1
            elif key in self._running:
                waits[key] = self._running[key]
                self.joined += 1
            else:
                mine[key] = job
                self._running[key] = loop.create_future()
        if mine:
            found.update(await self._execute_mine(mine, execute))
        for key, future in waits.items():
            # shield: one waiter's cancellation must not cancel the run others share
            found[key] = await asyncio.shield(future)
        return [found[key] for key in keys]

    async def _execute_mine(self, mine: dict[str, Job],
                            execute: Execute) -> dict[str, JobResult]:
        futures = {key: self._running[key] for key in mine}
        try:
            results = await execute(list(mine.values()))
        except BaseException as exc:
            # waiters get a clear error, never a hang; the error is theirs to retry
            error = exc if isinstance(exc, Exception) else NotReady("shared run was cancelled")
            for future in futures.values():
                if not future.done():
                    future.set_exception(error)
                    future.exception()  # mark retrieved: no "never retrieved" warning
            raise
        finally:
            for key in mine:
                self._running.pop(key, None)
        out = {}
        for (key, future), result in zip(futures.items(), results, strict=True):
            self._store(key, result)
            out[key] = result
            if not future.done():
                future.set_result(result)
        return out

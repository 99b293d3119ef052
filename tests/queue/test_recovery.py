"""No job lost: kill -9 mid-batch, poison jobs, graceful drain on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import redis

from sandbox_worker import protocol
from sandbox_worker.protocol import Job, RunStatus
from service.execution.redis_sandbox import RedisSandbox
from service.metrics import Metrics
from tests.queue.conftest import WorkerProc
from tests.servers import RedisServer

STREAM, GROUP = "codereward:jobs", "workers"


def _numbered_job(i: int) -> Job:
    """Job i passes its first assert always and its second only when i % 3 != 0."""
    code = f"import time\ntime.sleep(0.005)\ndef f():\n    return {i}\n"
    return Job(code=code, tests=[f"assert f() == {i}", f"assert f() == {i if i % 3 else -1}"],
               timeout_s=4.0, memory_mb=512)


def _pending(rdb: redis.Redis[str], consumer: str | None = None) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"consumername": consumer} if consumer else {}
    rows: list[dict[str, Any]] = rdb.xpending_range(STREAM, GROUP, "-", "+", 1000, **kwargs)
    return rows


async def _until(cond: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_kill9_mid_batch_loses_no_job_and_mixes_no_result(
        redis_server: RedisServer, start_worker: Callable[..., WorkerProc],
        rdb: redis.Redis[str]) -> None:
    victim, survivor = start_worker(), start_worker()
    sandbox = RedisSandbox(redis_server.url, metrics=Metrics())
    batches = [[_numbered_job(i) for i in range(b * 100, (b + 1) * 100)] for b in range(5)]
    try:
        tasks = [asyncio.create_task(sandbox.execute(b, deadline_s=240)) for b in batches]
        await _until(lambda: victim.metric("codereward_worker_jobs_total") >= 40)
        # freeze the victim first, so the jobs counted as pending are the ones the kill leaves
        # (a running worker may ack everything between a look at the PEL and the kill); then let
        # Redis run what the victim had already sent (an ack in flight when the stop landed)
        # before counting, or a job it acked is counted as orphaned and is never reclaimed
        deadline = time.monotonic() + 60
        while True:
            os.kill(victim.proc.pid, signal.SIGSTOP)
            await asyncio.sleep(0.3)
            orphaned = len(_pending(rdb, victim.name))
            if orphaned > 0 or time.monotonic() > deadline:
                break
            os.kill(victim.proc.pid, signal.SIGCONT)
            await asyncio.sleep(0.01)
        victim.kill9()
        results = await asyncio.gather(*tasks)
        assert orphaned > 0  # the kill left jobs pending on the dead consumer
        for b, batch_results in enumerate(results):
            assert len(batch_results) == 100
            for j, result in enumerate(batch_results):
                i = b * 100 + j
                assert result.status is RunStatus.OK, (i, result)
                assert result.passed == (2 if i % 3 else 1), (i, result)
        assert survivor.metric("codereward_worker_reclaimed_total") >= orphaned
        assert rdb.xlen(STREAM) == 0 and _pending(rdb) == []
        # every job id is answered exactly once in the cache
        assert rdb.zcard("codereward:results") == 500
    finally:
        await sandbox.aclose()


async def test_job_that_keeps_killing_its_worker_ends_killed(
        redis_server: RedisServer, start_worker: Callable[..., WorkerProc],
        rdb: redis.Redis[str]) -> None:
    env = {"CODEREWARD_MAX_ATTEMPTS": "2"}
    sandbox = RedisSandbox(redis_server.url, metrics=Metrics())
    poison = Job(code="import time", tests=["time.sleep(60)", "assert True"], timeout_s=90,
                 memory_mb=512)
    try:
        task = asyncio.create_task(sandbox.execute([poison], deadline_s=120))
        for attempt in (1, 2):  # each worker that takes the job dies running it
            worker = start_worker(**env)
            await _until(lambda w=worker: [r["consumer"] for r in _pending(rdb)] == [w.name])
            assert _pending(rdb)[0]["times_delivered"] == attempt
            worker.kill9()
        last = start_worker(**env)
        [result] = await task
        assert result.status is RunStatus.KILLED
        assert [t.status for t in result.tests] == [protocol.TestStatus.NOT_RUN] * 2
        assert result.pass_rate == 0.0 and "died 2 times" in (result.error or "")
        assert last.metric("codereward_worker_poisoned_total") == 1
        assert last.metric("codereward_worker_run_seconds_count") == 0  # never ran again
        assert _pending(rdb) == []
    finally:
        await sandbox.aclose()


async def test_sigterm_finishes_running_jobs_and_takes_no_new_ones(
        redis_server: RedisServer, start_worker: Callable[..., WorkerProc],
        rdb: redis.Redis[str]) -> None:
    draining = start_worker()
    sandbox = RedisSandbox(redis_server.url, metrics=Metrics())
    slow = Job(code="import time\ntime.sleep(1.5)\nok = True", tests=["assert ok"],
               timeout_s=10, memory_mb=512)
    later = Job(code="z = 3", tests=["assert z == 3"], timeout_s=4, memory_mb=512)
    try:
        first = asyncio.create_task(sandbox.execute([slow], deadline_s=60))
        await _until(lambda: len(_pending(rdb, draining.name)) == 1)
        draining.proc.send_signal(15)
        second = asyncio.create_task(sandbox.execute([later], deadline_s=60))
        [done] = await first
        assert done.status is RunStatus.OK and done.passed == 1
        assert await asyncio.to_thread(draining.proc.wait, 30) == 0
        assert not second.done() and rdb.xlen(STREAM) == 1  # left for the next worker
        start_worker()
        [answered] = await second
        assert answered.passed == 1
    finally:
        await sandbox.aclose()

"""Results round-trip through Redis; the cache answers repeats; concurrent duplicates run once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import redis

from sandbox_worker import protocol
from sandbox_worker.protocol import Job, RunStatus
from service.execution.redis_sandbox import RedisSandbox
from service.metrics import Metrics
from tests.queue.conftest import WorkerProc
from tests.servers import RedisServer


def _job(code: str, *tests: str) -> Job:
    return Job(code=code, tests=list(tests), timeout_s=4.0, memory_mb=512)


async def test_round_trip_then_cache_hit_without_any_worker(
        redis_server: RedisServer, start_worker: Callable[..., WorkerProc],
        rdb: redis.Redis[str]) -> None:
    worker = start_worker()
    metrics = Metrics()
    sandbox = RedisSandbox(redis_server.url, metrics=metrics)
    job = _job("def add(a, b):\n    return a + b", "assert add(1, 2) == 3", "assert add(1, 1) == 3")
    try:
        [first] = await sandbox.execute([job], deadline_s=30)
        assert first.status is RunStatus.OK
        assert [t.status for t in first.tests] == [protocol.TestStatus.PASSED, protocol.TestStatus.FAILED]
        assert worker.metric("codereward_worker_jobs_total") == 1
        assert worker.terminate() == 0  # graceful drain exits cleanly
        assert not rdb.exists("codereward:worker:w0")  # heartbeat removed on exit
        # no worker is left: only the cache can answer
        [again] = await sandbox.execute([job], deadline_s=10)
        assert again == first
        assert sandbox.cache_hits._value.get() == 1
        assert rdb.xlen("codereward:jobs") == 0  # answered entries leave the stream
    finally:
        await sandbox.aclose()


async def test_same_job_from_two_replicas_at_once_runs_once(
        redis_server: RedisServer, start_worker: Callable[..., WorkerProc]) -> None:
    worker = start_worker()
    replicas = [RedisSandbox(redis_server.url, metrics=Metrics()) for _ in range(2)]
    # slow enough that the second submission arrives while the first is queued or running
    job = _job("import time\ntime.sleep(0.5)\nx = 1", "assert x == 1")
    other = _job("y = 2", "assert y == 2")
    try:
        results = await asyncio.gather(
            replicas[0].execute([job, other], deadline_s=30),
            replicas[1].execute([job], deadline_s=30),
            replicas[1].execute([job, job], deadline_s=30))
        assert results[0][0] == results[1][0] == results[2][0] == results[2][1]
        assert results[0][0].passed == 1 and results[0][1].passed == 1
        assert worker.metric("codereward_worker_jobs_total") == 2  # job and other, once each
        submits = [r.submits.labels("queued")._value.get() for r in replicas]
        assert sum(submits) == 2
    finally:
        for replica in replicas:
            await replica.aclose()

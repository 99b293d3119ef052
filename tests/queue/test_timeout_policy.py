"""The stop-after-timeout policy travels over the Redis queue and keys its own cache entry."""

from __future__ import annotations

from collections.abc import Callable

from sandbox_worker.protocol import Job
from sandbox_worker.protocol import TestStatus as Status
from service.execution.redis_sandbox import RedisSandbox
from service.metrics import Metrics
from tests.queue.conftest import WorkerProc
from tests.servers import RedisServer

LOOPS = "def f(x):\n    while True:\n        pass"
TESTS = ["assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3"]


async def test_stop_policy_runs_on_a_worker(redis_server: RedisServer,
                                            start_worker: Callable[..., WorkerProc]) -> None:
    start_worker()
    sandbox = RedisSandbox(redis_server.url, metrics=Metrics())
    every = Job(code=LOOPS, tests=TESTS, timeout_s=0.5, memory_mb=512)
    stop = every.model_copy(update={"stop_after_timeout": True})
    try:
        first_stop = await sandbox.execute([stop], deadline_s=60)
        first_every = await sandbox.execute([every], deadline_s=60)  # not the cached stop result
        assert [t.status for t in first_stop[0].tests] == [Status.TIMEOUT, *[Status.NOT_RUN] * 2]
        assert [t.status for t in first_every[0].tests] == [Status.TIMEOUT] * 3
        assert first_stop[0].pass_rate == first_every[0].pass_rate == 0.0
        assert await sandbox.execute([stop], deadline_s=60) == first_stop  # its own cache entry
        assert sandbox.cache_hits._value.get() == 1
    finally:
        await sandbox.aclose()

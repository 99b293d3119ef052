"""The worker loop in-process with a stand-in runner: faults in the runner and bad entries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from sandbox_worker import protocol
from sandbox_worker.config import WorkerSettings
from sandbox_worker.protocol import Job, JobResult, RunStatus
from sandbox_worker.worker import Worker
from service.execution.redis_sandbox import RedisSandbox
from service.metrics import Metrics
from tests.servers import RedisServer


class StandInRunner:
    """Passes every test, except that code 'boom' makes the runner itself raise."""

    isolation = "none"

    def __init__(self) -> None:
        self.runs = 0

    def run(self, job: Job) -> JobResult:
        self.runs += 1
        if job.code == "boom":
            raise RuntimeError("runner fault")
        return JobResult.from_tests(RunStatus.OK, [protocol.TestVerdict(status=protocol.TestStatus.PASSED)] * len(job.tests))

    def healthy(self) -> bool:
        return True


@pytest.fixture
def worker(redis_server: RedisServer, rdb: redis.Redis[str]) -> Iterator[tuple[Worker,
                                                                                StandInRunner]]:
    settings = WorkerSettings(redis_url=redis_server.url, worker_name="unit",
                              worker_metrics_port=0, claim_idle_s=0.6, worker_heartbeat_s=0.2,
                              read_block_s=0.2, max_attempts=2, sandbox_workers=2)
    runner = StandInRunner()
    w = Worker(settings, runner, rdb)
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    yield w, runner
    w.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()


async def test_runner_fault_is_retried_then_answered_killed(
        redis_server: RedisServer, worker: tuple[Worker, StandInRunner]) -> None:
    w, runner = worker
    sandbox = RedisSandbox(redis_server.url, metrics=Metrics())
    try:
        ok, bad = (Job(code=c, tests=["assert 1"], timeout_s=1, memory_mb=64)
                   for c in ("fine", "boom"))
        [good, killed] = await sandbox.execute([ok, bad], deadline_s=30)
        assert good.status is RunStatus.OK and good.passed == 1
        assert killed.status is RunStatus.KILLED and killed.passed == 0
        assert runner.runs == 3  # fine once, boom on each of its 2 allowed deliveries
        assert w.metrics.poisoned._value.get() == 1
    finally:
        await sandbox.aclose()


def test_malformed_entry_is_dropped_and_serving_goes_on(
        worker: tuple[Worker, StandInRunner], rdb: redis.Redis[str]) -> None:
    _, runner = worker
    rdb.xadd("codereward:jobs", {"job": "{not json"})
    rdb.xadd("codereward:jobs", {"other": "field"})
    deadline = time.monotonic() + 20
    while rdb.xlen("codereward:jobs") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rdb.xlen("codereward:jobs") == 0 and runner.runs == 0
    assert rdb.xpending("codereward:jobs", "workers")["pending"] == 0


def test_idle_timeout_shorter_than_two_heartbeats_is_refused() -> None:
    with pytest.raises(ValueError, match="claim_idle_s"):
        WorkerSettings(claim_idle_s=1.0, worker_heartbeat_s=1.0)

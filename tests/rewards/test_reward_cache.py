"""VerdictCache: identical programs run once; concurrent duplicates join; failures reach all."""

from __future__ import annotations

import asyncio

import pytest

from sandbox_worker import protocol as proto
from sandbox_worker.protocol import Job, JobResult, RunStatus
from service.errors import DeadlineExceeded, NotReady
from service.rewards.cache import VerdictCache


def _job(code: str) -> Job:
    return Job(code=code, tests=["assert f() == 1"], timeout_s=1.0, memory_mb=256)


class Runner:
    """Counts executed jobs; passes code containing 'ok', times out code with 'slow'."""

    def __init__(self, gate: asyncio.Event | None = None, fail: Exception | None = None) -> None:
        self.ran: list[str] = []
        self.gate = gate
        self.fail = fail

    async def __call__(self, jobs: list[Job]) -> list[JobResult]:
        self.ran.extend(j.code for j in jobs)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        out = []
        for job in jobs:
            if "slow" in job.code:
                out.append(JobResult.unrun(RunStatus.TIMEOUT, 1))
            else:
                status = proto.TestStatus.PASSED if "ok" in job.code else proto.TestStatus.FAILED
                out.append(JobResult.from_tests(RunStatus.OK, [proto.TestVerdict(status=status)]))
        return out


async def test_duplicates_in_one_call_and_later_calls_run_once() -> None:
    cache, run = VerdictCache(100), Runner()
    first = await cache.run([_job("ok"), _job("bad"), _job("ok")], run)
    assert [r.pass_rate for r in first] == [1.0, 0.0, 1.0]
    again = await cache.run([_job("bad"), _job("ok")], run)
    assert [r.pass_rate for r in again] == [0.0, 1.0]
    assert run.ran == ["ok", "bad"]
    assert cache.hits == 2


async def test_concurrent_duplicates_join_the_running_job() -> None:
    gate = asyncio.Event()
    cache, run = VerdictCache(100), Runner(gate)
    tasks = [asyncio.create_task(cache.run([_job("ok")], run)) for _ in range(8)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert [r[0].pass_rate for r in results] == [1.0] * 8
    assert run.ran == ["ok"]
    assert cache.joined == 7


async def test_timeouts_are_not_stored_and_lru_evicts_oldest() -> None:
    cache, run = VerdictCache(2), Runner()
    await cache.run([_job("slow")], run)
    await cache.run([_job("slow")], run)
    assert run.ran == ["slow", "slow"]
    await cache.run([_job("ok a")], run)
    await cache.run([_job("ok b")], run)
    await cache.run([_job("ok c")], run)  # evicts "ok a"
    await cache.run([_job("ok a"), _job("ok c")], run)
    assert run.ran[-1] == "ok a" and run.ran.count("ok c") == 1


async def test_zero_entries_stores_nothing() -> None:
    cache, run = VerdictCache(0), Runner()
    await cache.run([_job("ok")], run)
    await cache.run([_job("ok")], run)
    assert run.ran == ["ok", "ok"]


async def test_owner_failure_reaches_waiters() -> None:
    gate = asyncio.Event()
    cache = VerdictCache(100)
    run = Runner(gate, fail=DeadlineExceeded("too slow"))
    owner = asyncio.create_task(cache.run([_job("ok")], run))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(cache.run([_job("ok")], run))
    await asyncio.sleep(0.01)
    gate.set()
    for task in (owner, waiter):
        with pytest.raises(DeadlineExceeded):
            await task
    assert await cache.run([_job("ok")], Runner()) is not None  # nothing stuck in flight


async def test_owner_cancelled_gives_waiters_a_retryable_error() -> None:
    gate = asyncio.Event()
    cache, run = VerdictCache(100), Runner(gate)
    owner = asyncio.create_task(cache.run([_job("ok")], run))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(cache.run([_job("ok")], run))
    await asyncio.sleep(0.01)
    owner.cancel()
    with pytest.raises(NotReady):
        await waiter
    with pytest.raises(asyncio.CancelledError):
        await owner


async def test_a_verdict_under_one_timeout_policy_is_not_served_for_the_other() -> None:
    cache, run = VerdictCache(100), Runner()
    every = _job("ok")
    stop = every.model_copy(update={"stop_after_timeout": True})
    await cache.run([every], run)
    await cache.run([stop], run)
    await cache.run([stop, every], run)
    assert run.ran == ["ok", "ok"]  # each policy ran once, then both came from the cache
    assert cache.hits == 2

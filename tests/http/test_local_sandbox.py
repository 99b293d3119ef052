"""LocalSandbox's own behaviour (deadline, cancellation, backpressure), with a slow fake executor."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time

import pytest

from sandbox_worker.protocol import Job, JobResult, RunStatus
from service.errors import DeadlineExceeded, Overloaded
from service.execution.sandbox import LocalSandbox
from service.metrics import Metrics


class SlowExecutor:
    """Takes `delay_s` per job; the real executor has its own tests in tests/sandbox."""

    isolation = "none"

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.started = threading.Event()

    def run(self, job: Job) -> JobResult:
        self.started.set()
        time.sleep(self.delay_s)
        return JobResult.unrun(RunStatus.OK, len(job.tests))

    def healthy(self) -> bool:
        return True

    def close(self) -> None:
        return None


def job() -> Job:
    return Job(code="x = 1", tests=["assert x"], timeout_s=1, memory_mb=256)


def sandbox(delay_s: float, max_pending: int = 100) -> LocalSandbox:
    return LocalSandbox(SlowExecutor(delay_s), workers=2, max_pending=max_pending,  # type: ignore[arg-type]
                        metrics=Metrics())


async def test_deadline_is_504_and_frees_capacity() -> None:
    box = sandbox(0.5, max_pending=2)
    with pytest.raises(DeadlineExceeded):
        await box.execute([job(), job()], deadline_s=0.05)
    assert len(await box.execute([job()], deadline_s=5)) == 1  # pending count went back down
    await box.aclose()


async def test_over_capacity_is_429() -> None:
    box = sandbox(0.01, max_pending=1)
    with pytest.raises(Overloaded):
        await box.execute([job(), job()], deadline_s=5)
    await box.aclose()


async def test_cancelled_execution_leaves_no_unretrieved_errors(
        caplog: pytest.LogCaptureFixture) -> None:
    # /rerank cancels execution when scoring answers 429; nothing may be logged as lost
    box = sandbox(0.3)
    task = asyncio.create_task(box.execute([job(), job(), job()], deadline_s=5))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.5)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
        await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text
    await box.aclose()

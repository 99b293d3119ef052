"""Per-job timeout policy: every assert runs (AceCoder), or the rest stop after a timeout."""

from __future__ import annotations

from sandbox_worker.executor import Executor
from sandbox_worker.protocol import Job
from sandbox_worker.protocol import TestStatus as Status

LOOPS = "def f(x):\n    while True:\n        pass"
LOOPS_ON_2 = "def f(x):\n    while x == 2:\n        pass\n    return x"
TESTS = ["assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3"]


def _statuses(executor: Executor, code: str, stop: bool) -> tuple[list[Status], int, float]:
    result = executor.run(Job(code=code, tests=TESTS, timeout_s=0.5, memory_mb=512,
                              stop_after_timeout=stop))
    assert executor.healthy()
    return [t.status for t in result.tests], result.passed, result.pass_rate


def test_default_runs_every_assert_of_a_looping_program(executor: Executor) -> None:
    statuses, passed, rate = _statuses(executor, LOOPS, stop=False)
    assert statuses == [Status.TIMEOUT] * 3
    assert (passed, rate) == (0, 0.0)


def test_stop_policy_skips_the_asserts_after_a_timeout(executor: Executor) -> None:
    statuses, passed, rate = _statuses(executor, LOOPS, stop=True)
    assert statuses == [Status.TIMEOUT, Status.NOT_RUN, Status.NOT_RUN]
    assert (passed, rate) == (0, 0.0)


def test_later_asserts_count_only_under_the_default_policy(executor: Executor) -> None:
    statuses, passed, _ = _statuses(executor, LOOPS_ON_2, stop=False)
    assert statuses == [Status.PASSED, Status.TIMEOUT, Status.PASSED]
    assert passed == 2
    statuses, passed, rate = _statuses(executor, LOOPS_ON_2, stop=True)
    assert statuses == [Status.PASSED, Status.TIMEOUT, Status.NOT_RUN]
    assert (passed, rate) == (1, 1 / 3)


def test_policy_is_part_of_the_job_id() -> None:
    base = Job(code=LOOPS, tests=TESTS, timeout_s=1.0, memory_mb=512)
    stop = base.model_copy(update={"stop_after_timeout": True})
    assert base.job_id() != stop.job_id()
    assert Job.model_validate_json(stop.model_dump_json()).job_id() == stop.job_id()

"""The "none" level (hosts without namespaces): same verdict rules, weaker containment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox_worker.executor import Executor
from sandbox_worker.protocol import Job, RunStatus
from sandbox_worker.protocol import TestStatus as TS


@pytest.fixture(scope="module")
def plain() -> Iterator[Executor]:
    ex = Executor(1, isolation="none")
    ex.start()
    try:
        yield ex
    finally:
        ex.close()


def _run(ex: Executor, code: str, tests: list[str], timeout_s: float = 2.0) -> list[TS]:
    result = ex.run(Job(code=code, tests=tests, timeout_s=timeout_s, memory_mb=512))
    assert ex.healthy()
    return [t.status for t in result.tests]


def test_level_and_verdicts(plain: Executor) -> None:
    assert plain.isolation == "none"
    code = "import os\ndef f(x):\n    return x + 1\ndef env():\n    return sorted(os.environ)"
    assert _run(plain, code, ["assert f(1) == 2", "assert f(1) == 3",
                              "assert not any('CODEREWARD' in k for k in env())"]) == [
        TS.PASSED, TS.FAILED, TS.PASSED]


def test_forgery_and_runaways_still_fail(plain: Executor) -> None:
    liar = "class A:\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return A()"
    assert _run(plain, liar, ["assert f(1) == 2", "for i in range(2):\n    assert f(i) == 9"]) \
        == [TS.FAILED, TS.FAILED]
    assert _run(plain, "import os\ndef f(x):\n    os._exit(0)", ["assert f(1) == 2"]) == [
        TS.KILLED]
    assert _run(plain, "def f(x):\n    while True:\n        pass", ["assert f(1) == 2"],
                timeout_s=0.3) == [TS.TIMEOUT]
    result = plain.run(Job(code="raise SystemExit", tests=["assert True"], timeout_s=1,
                           memory_mb=256))
    assert result.status is RunStatus.LOAD_ERROR


def test_load_errors_are_load_errors_every_time(plain: Executor) -> None:
    # the child answers and ends at once: the tests queued behind the code meet a closed
    # pipe, which must not turn the verdict into `killed` (it raced, about 1 run in 10)
    statuses = {plain.run(Job(code="raise ValueError('x')", tests=["assert True"], timeout_s=5,
                              memory_mb=256)).status for _ in range(30)}
    assert statuses == {RunStatus.LOAD_ERROR}

"""Real executor fixtures: one warm pool per session, real namespace isolation when allowed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sandbox_worker.executor import Executor
from sandbox_worker.protocol import Job, JobResult, ModuleTests

RunModule = Callable[..., JobResult]


@pytest.fixture(scope="session")
def isolated(executor: Executor) -> Executor:
    """The executor, or a skip when the host allows no namespace isolation."""
    if executor.isolation != "namespaces":
        pytest.skip("this host allows no namespace isolation")
    return executor


@pytest.fixture
def run(executor: Executor) -> Callable[..., JobResult]:
    """run(code, tests, timeout_s=10.0, memory_mb=512) -> JobResult, checking pool health.

    The default limit is generous: an honest test ends long before it, and a loaded 2-core CI
    box must not turn a verdict into a timeout. Tests that want a timeout pass a short one.
    """

    def _run(code: str, tests: list[str], timeout_s: float = 10.0,
             memory_mb: int = 512) -> JobResult:
        result = executor.run(Job(code=code, tests=tests, timeout_s=timeout_s,
                                  memory_mb=memory_mb))
        assert executor.healthy()
        return result

    return _run


@pytest.fixture
def run_module(executor: Executor) -> RunModule:
    def _run(code: str, kind: str, module: str, timeout_s: float = 10.0) -> JobResult:
        job = Job(code=code, tests=ModuleTests(kind=kind, module=module),  # type: ignore[arg-type]
                  timeout_s=timeout_s, memory_mb=512)
        result = executor.run(job)
        assert executor.healthy()
        assert result.total == job.n_tests()
        return result
    return _run

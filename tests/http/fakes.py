"""Fakes for unit tests of the HTTP layer (the real sandbox and models have their own tests)."""

from __future__ import annotations

from collections.abc import Sequence

from sandbox_worker.protocol import Job, JobResult, RunStatus, TestStatus, TestVerdict


class FakeSandbox:
    """Passes every test whose text contains 'True'; records what it ran."""

    def __init__(self, *, fail_with: Exception | None = None) -> None:
        self.jobs: list[Job] = []
        self.fail_with = fail_with
        self.is_ready = True

    async def execute(self, jobs: Sequence[Job], *, deadline_s: float) -> list[JobResult]:
        if self.fail_with is not None:
            raise self.fail_with
        self.jobs.extend(jobs)
        return [
            JobResult.from_tests(RunStatus.OK, [
                TestVerdict(status=TestStatus.PASSED if "True" in t else TestStatus.FAILED)
                for t in job.tests])
            for job in jobs
        ]

    async def ready(self) -> bool:
        return self.is_ready

    def describe(self) -> dict[str, str]:
        return {"backend": "fake", "isolation": "none"}

    def languages(self) -> dict[str, str] | None:
        return None

    async def aclose(self) -> None:
        return None


class FakeRegistry:
    """A registry that is ready and knows no models."""

    def __init__(self, ready: bool = True) -> None:
        self._ready = ready

    def ready(self) -> bool:
        return self._ready

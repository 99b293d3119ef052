"""Fakes for unit tests of the reward layer (live tests use the real model and sandbox)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sandbox_worker.protocol import Job, JobResult, RunStatus, TestStatus, TestVerdict


class PassIfDefined:
    """Sandbox fake: a test passes when the name it calls is defined by `def` in the code."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    async def execute(self, jobs: Sequence[Job], *, deadline_s: float) -> list[JobResult]:
        self.jobs.extend(jobs)
        out = []
        for job in jobs:
            if "syntax error" in job.code:
                out.append(JobResult.unrun(RunStatus.SYNTAX_ERROR, len(job.tests)))
                continue
            verdicts = []
            for test in job.tests:
                name = test.removeprefix("assert ").split("(")[0].strip()
                ok = f"def {name}(" in job.code
                verdicts.append(TestVerdict(status=TestStatus.PASSED if ok else TestStatus.FAILED))
            out.append(JobResult.from_tests(RunStatus.OK, verdicts))
        return out

    async def ready(self) -> bool:
        return True

    def describe(self) -> dict[str, str]:
        return {"backend": "fake", "isolation": "none"}

    def languages(self) -> dict[str, str] | None:
        return None

    async def aclose(self) -> None:
        return None


@dataclass
class Outcome:
    scores: list[float]


class LengthScorer:
    """Scorer fake: score = length of the last message / 10; records what it scored."""

    def __init__(self) -> None:
        self.items: list[list[dict[str, str]]] = []

    async def score(self, items: Sequence[list[dict[str, str]]]) -> Outcome:
        self.items.extend(items)
        return Outcome([len(item[-1]["content"]) / 10 for item in items])


class FakeRegistry:
    """One model named `fake`."""

    def __init__(self) -> None:
        self.scorer = LengthScorer()

    def ready(self) -> bool:
        return True

    def get(self, name: str | None = None) -> LengthScorer:
        from service.errors import NotFound

        if name not in (None, "fake"):
            raise NotFound(f"unknown model {name!r}")
        return self.scorer

    def infos(self) -> list[object]:
        return []

    async def aclose(self) -> None:
        return None

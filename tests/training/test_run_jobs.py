"""run_jobs: results in job order, duplicates run once, the bar advances as programs finish."""

from __future__ import annotations

import threading
import time
from typing import Any

from sandbox_worker import protocol as pr
from sandbox_worker.protocol import Job, JobResult, RunStatus
from training.problems.passrate import run_jobs


class _SlowFirst:
    """Stands in for the executor: the first distinct program is slow, the rest instant."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.finished: list[str] = []

    def run(self, job: Job) -> JobResult:
        with self.lock:
            self.calls.append(job.code)
        if job.code == "slow":
            time.sleep(0.5)
        with self.lock:
            self.finished.append(job.code)
        ok = pr.TestVerdict(status=pr.TestStatus.PASSED if job.code != "bad"
                            else pr.TestStatus.FAILED)
        return JobResult.from_tests(RunStatus.OK, [ok])


def _job(code: str) -> Job:
    return Job(code=code, tests=["assert True"], timeout_s=1.0, memory_mb=64)


def test_results_keep_job_order_and_duplicates_run_once() -> None:
    ex = _SlowFirst()
    jobs = [_job(c) for c in ("slow", "a", "bad", "a", "slow")]
    seen: list[tuple[int, float]] = []
    out = run_jobs(ex, jobs, workers=4, progress=False,  # type: ignore[arg-type]
                   on_result=lambda i, r: seen.append((i, r.pass_rate)))
    assert [r.pass_rate for r in out] == [1.0, 1.0, 0.0, 1.0, 1.0]
    assert sorted(ex.calls) == ["a", "bad", "slow"]
    assert sorted(seen) == [(0, 1.0), (1, 1.0), (2, 0.0), (3, 1.0), (4, 1.0)]
    # reported as they finish: the fast programs come in before the slow first one
    assert [i for i, _ in seen][-2:] == [0, 4]


def test_progress_bar_counts_every_job(capsys: Any) -> None:
    ex = _SlowFirst()
    run_jobs(ex, [_job("a"), _job("a"), _job("b")], workers=2, desc="pass rates")  # type: ignore[arg-type]
    assert "3/3" in capsys.readouterr().err

"""Sandbox outcome counters: one labelled increment per status, counts add up."""

from __future__ import annotations

from sandbox_worker.protocol import JobResult, RunStatus
from sandbox_worker.protocol import TestStatus as Status
from sandbox_worker.protocol import TestVerdict as Verdict
from service.execution.sandbox import record_results
from service.metrics import Metrics


def test_record_results_counts_runs_and_tests_by_status() -> None:
    metrics = Metrics()
    ok = JobResult.from_tests(RunStatus.OK, [Verdict(status=Status.PASSED),
                                             Verdict(status=Status.TIMEOUT)])
    record_results(metrics, [ok, ok, JobResult.unrun(RunStatus.SYNTAX_ERROR, 3)])
    runs, tests = metrics.sandbox_runs, metrics.sandbox_tests
    assert runs.labels("ok")._value.get() == 2
    assert runs.labels("syntax_error")._value.get() == 1
    assert tests.labels("passed")._value.get() == 2
    assert tests.labels("timeout")._value.get() == 2
    assert tests.labels("not_run")._value.get() == 3

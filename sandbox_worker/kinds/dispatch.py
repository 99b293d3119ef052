"""Runs a job of a kind beyond single-line asserts (`stdio`, `call`), or says why it cannot."""

from __future__ import annotations

from collections.abc import Callable

from sandbox_worker import languages, session
from sandbox_worker.kinds import modules
from sandbox_worker.kinds.call import run_call
from sandbox_worker.kinds.stdio import run_stdio
from sandbox_worker.protocol import CallTests, Job, JobResult, ModuleTests, RunStatus, StdioTests
from sandbox_worker.session import Child

SUPPORTED = ("asserts", "stdio", "call", "unittest", "pytest")  # kinds this executor runs


def run_job(spawn: Callable[[], Child], job: Job) -> JobResult:
    """Run a job of any kind but `asserts` (session.run_job) to a result."""
    refused = check(job)
    if refused is not None:
        return JobResult.unrun(RunStatus.LOAD_ERROR, job.n_tests(), refused)
    if isinstance(job.tests, StdioTests):
        return run_stdio(spawn, job)
    if isinstance(job.tests, CallTests):
        return run_call(spawn, job)
    if isinstance(job.tests, ModuleTests):
        try:
            tests = modules.convert(job.tests.kind, job.tests.module)
        except (SyntaxError, ValueError, RecursionError, MemoryError, TypeError) as exc:
            return JobResult.unrun(RunStatus.LOAD_ERROR, 0,
                                   f"the test module does not parse: {type(exc).__name__}")
        return session.run_job(spawn, job.model_copy(update={"tests": [t for _, t in tests]}))
    return JobResult.unrun(RunStatus.LOAD_ERROR, job.n_tests(),
                           f"test kind {job.kind!r} is not supported by this executor")


def check(job: Job) -> str | None:
    """Why this executor cannot run `job` (kind, language, toolchain), or None."""
    if job.kind not in SUPPORTED:
        return f"test kind {job.kind!r} is not supported by this executor"
    if job.language not in languages.LANGUAGES:
        return f"unknown language {job.language!r}"
    if job.language != "python" and job.kind != "stdio":
        return f"{job.kind} tests run Python programs only (got {job.language!r})"
    if languages.version(job.language) is None:
        return f"no {job.language} toolchain on this executor"
    return None

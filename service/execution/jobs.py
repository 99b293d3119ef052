"""Turn /execute-tests requests into sandbox jobs within the server's limits."""

from __future__ import annotations

from collections.abc import Sequence

from sandbox_worker.protocol import Job
from service.config import Settings
from service.errors import TooLarge, Unprocessable


def resolve_limits(settings: Settings, timeout_s: float | None,
                   memory_mb: int | None) -> tuple[float, int]:
    """Request limits or server defaults; 422 when a request asks beyond the server maxima."""
    timeout = settings.default_timeout_s if timeout_s is None else timeout_s
    memory = settings.default_memory_mb if memory_mb is None else memory_mb
    if timeout > settings.max_timeout_s:
        raise Unprocessable(f"timeout_s {timeout} over the server maximum {settings.max_timeout_s}")
    if memory > settings.max_memory_mb:
        raise Unprocessable(f"memory_mb {memory} over the server maximum {settings.max_memory_mb}")
    if memory < 64:
        raise Unprocessable("memory_mb must be at least 64 (the interpreter needs it)")
    return timeout, memory


def _check_encodable(text: str, what: str) -> None:
    # JSON may carry lone surrogates ("\ud800"); no program text can, and both sandbox
    # backends must answer the same: a clear 422 here rather than a crash deeper down
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Unprocessable(f"{what} is not valid Unicode text (lone surrogate)") from exc


def check_program(settings: Settings, code: str, tests: Sequence[str]) -> None:
    """413 when a program or its tests are over the configured sizes; 422 when not text."""
    _check_encodable(code, "code")
    for test in tests:
        _check_encodable(test, "a test")
    if len(tests) > settings.max_tests:
        raise TooLarge(f"{len(tests)} tests over the limit of {settings.max_tests}")
    if len(code) > settings.max_text_chars:
        raise TooLarge(f"code of {len(code)} chars over the limit of {settings.max_text_chars}")
    for test in tests:
        if len(test) > settings.max_text_chars:
            raise TooLarge(f"a test of {len(test)} chars over the limit of "
                           f"{settings.max_text_chars}")


def build_jobs(settings: Settings, programs: Sequence[tuple[str, Sequence[str]]],
               timeout_s: float | None, memory_mb: int | None, *,
               stop_after_timeout: bool = False) -> list[Job]:
    """Validate (code, tests) pairs and wrap them as jobs with resolved limits."""
    if len(programs) > settings.max_submissions:
        raise TooLarge(f"{len(programs)} submissions over the limit of "
                       f"{settings.max_submissions}")
    timeout, memory = resolve_limits(settings, timeout_s, memory_mb)
    jobs = []
    for code, tests in programs:
        check_program(settings, code, tests)
        jobs.append(Job(code=code, tests=list(tests), timeout_s=timeout, memory_mb=memory,
                        stop_after_timeout=stop_after_timeout))
    return jobs


def deadline_for(settings: Settings, jobs: Sequence[Job]) -> float:
    """Seconds a request may wait: the request timeout, never below one job's worst case."""
    if not jobs:
        return settings.request_timeout_s
    # the executor stretches a starved test's deadline up to 3x on a busy host (clock.py)
    worst_one = max(3.0 * j.timeout_s * max(1, j.n_tests()) + 5.0 for j in jobs)
    return max(settings.request_timeout_s, worst_one)

"""Turn /execute-tests requests into sandbox jobs within the server's limits."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sandbox_worker import languages
from sandbox_worker.protocol import CallTests, Job, ModuleTests, TestSpec
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


Tests = Sequence[str] | TestSpec  # asserts (AceCode's format) or one of the other kinds
Program = tuple[str, Tests] | tuple[str, Tests, str]  # (code, tests[, language])


def _check_spec(settings: Settings, spec: TestSpec, language: str) -> None:
    if isinstance(spec, ModuleTests):
        if language != "python":
            raise Unprocessable(f"{spec.kind} tests run Python programs only (got {language!r})")
        if len(spec.module) > settings.max_text_chars:
            raise TooLarge(f"a test module of {len(spec.module)} chars over the limit of "
                           f"{settings.max_text_chars}")
        _check_encodable(spec.module, "the test module")
        if not Job(code="", tests=spec, timeout_s=1, memory_mb=64).n_tests():
            raise Unprocessable(f"the {spec.kind} test module defines no tests "
                                "(or does not parse)")
        return
    if isinstance(spec, CallTests):
        if language != "python":
            raise Unprocessable(f"call tests run Python programs only (got {language!r})")
        if not spec.fn_name.isidentifier():
            raise Unprocessable(f"fn_name {spec.fn_name[:80]!r} is not a Python identifier")
        if len(spec.inputs) != len(spec.outputs):
            raise Unprocessable(f"call tests need one output per input ({len(spec.inputs)} "
                                f"inputs, {len(spec.outputs)} outputs)")
        return
    for case in spec.cases:
        for text, what in ((case.input, "a case input"), (case.output, "a case output")):
            _check_encodable(text, what)
            if len(text) > settings.max_case_chars:
                raise TooLarge(f"{what} of {len(text)} chars over the limit of "
                               f"{settings.max_case_chars}")


def check_language(language: str, available: Collection[str] | None) -> str:
    """The registry name of `language`; 422 when unknown or (when known) not installed."""
    name = languages.canonical(language)
    if name not in languages.LANGUAGES:
        raise Unprocessable(f"unknown language {language[:40]!r}; known: "
                            + ", ".join(languages.LANGUAGES))
    if available is not None and name not in available:
        raise Unprocessable(f"no {name} toolchain on this server; available: "
                            + ", ".join(sorted(available)))
    return name


def check_program(settings: Settings, code: str, tests: Tests, language: str = "python",
                  ) -> None:
    """413 when a program or its tests are over the configured sizes; 422 when not text,
    or when the tests' kind cannot run this language."""
    _check_encodable(code, "code")
    if len(code) > settings.max_text_chars:
        raise TooLarge(f"code of {len(code)} chars over the limit of {settings.max_text_chars}")
    if not isinstance(tests, Sequence):
        _check_spec(settings, tests, language)
        n = Job(code="", tests=tests, timeout_s=1, memory_mb=64).n_tests()
        if n > settings.max_tests:
            raise TooLarge(f"{n} tests over the limit of {settings.max_tests}")
        return
    if language != "python":
        raise Unprocessable(f"assert tests run Python programs only (got {language!r}); "
                            "use stdio tests for other languages")
    for test in tests:
        _check_encodable(test, "a test")
    if len(tests) > settings.max_tests:
        raise TooLarge(f"{len(tests)} tests over the limit of {settings.max_tests}")
    for test in tests:
        if len(test) > settings.max_text_chars:
            raise TooLarge(f"a test of {len(test)} chars over the limit of "
                           f"{settings.max_text_chars}")


def build_jobs(settings: Settings, programs: Sequence[Program],
               timeout_s: float | None, memory_mb: int | None, *,
               stop_after_timeout: bool = False,
               available: Collection[str] | None = None,
               program_timeout_s: float | None = None) -> list[Job]:
    """Validate (code, tests[, language]) and wrap them as jobs with resolved limits;
    `available`: the languages the backend can run (None: not known here)."""
    if len(programs) > settings.max_submissions:
        raise TooLarge(f"{len(programs)} submissions over the limit of "
                       f"{settings.max_submissions}")
    timeout, memory = resolve_limits(settings, timeout_s, memory_mb)
    jobs = []
    for code, tests, *rest in programs:
        language = check_language(rest[0] if rest else "python", available)
        check_program(settings, code, tests, language)
        jobs.append(Job(code=code, tests=list(tests) if isinstance(tests, Sequence) else tests,
                        language=language, timeout_s=timeout, memory_mb=memory,
                        stop_after_timeout=stop_after_timeout,
                        program_timeout_s=program_timeout_s))
    return jobs


def _compiled(language: str) -> bool:
    lang = languages.LANGUAGES.get(language)
    return lang is not None and bool(lang.compile)


def deadline_for(settings: Settings, jobs: Sequence[Job]) -> float:
    """Seconds a request may wait: the request timeout, never below one job's worst case."""
    if not jobs:
        return settings.request_timeout_s
    # the executor stretches a starved test's deadline up to 3x on a busy host (clock.py)
    # plus a compile for a compiled language (30 s at most, sandbox_worker.kinds.builds)
    worst_one = max(3.0 * j.timeout_s * max(1, j.n_tests()) + 5.0
                    + (35.0 if _compiled(j.language) else 0.0) for j in jobs)
    return max(settings.request_timeout_s, worst_one)

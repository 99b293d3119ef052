"""Supervises a `stdio` job on the trusted side: one child per program, one fork per case.

The child (kinds/stdio_child.py) gets the program and, per case, only that case's input; the
expected outputs never leave this process, so nothing the program does can read or forge
them: a case passes only when the bytes it wrote to stdout compare equal here (outputs.py)
and it exited with status 0. A child that dies, stalls or breaks the protocol ends that case
as `killed`/`timeout`; later cases run in a freshly forked child. Compiled languages are
built once per program (builds.py) and each case is an exec of the binary.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

from sandbox_worker import languages, session, wire
from sandbox_worker.clock import STARVED_FACTOR
from sandbox_worker.kinds import builds, outputs
from sandbox_worker.protocol import Job, JobResult, RunStatus, StdioTests, TestStatus, TestVerdict
from sandbox_worker.session import Child

ERROR_CHARS = 300
GRACE_S = 2.0  # past the case's own limit (which the child enforces) before we kill it
MIN_OUTPUT_CAP = 1 << 20  # stdout bytes a case may write: at least this, or 4x the expected
MAX_OUTPUT_CAP = 32 << 20  # base64 of it stays under session.MAX_ANSWER_BYTES


def _cut(text: object) -> str:
    return str(text)[:ERROR_CHARS]


def output_cap(tests: StdioTests) -> int:
    """Most stdout bytes a case may write before it is stopped (`output` over the cap)."""
    longest = max((len(c.output.encode("utf-8")) for c in tests.cases), default=0)
    return min(MAX_OUTPUT_CAP, max(MIN_OUTPUT_CAP, 4 * longest + 4096))


def _first_frame(job: Job, lang: languages.Language, build: builds.Build | None,
                 tests: StdioTests) -> dict[str, Any]:
    n = max(1, len(tests.cases))
    memory = job.memory_mb + lang.extra_as_mb
    msg: dict[str, Any] = {"kind": "stdio", "cap": output_cap(tests), "memory_mb": memory,
                           "cpu_s": math.ceil(job.timeout_s * (n + 2)) + 1, "env": lang.env}
    if build is None:
        return {**msg, "mode": "python", "code": job.code}
    return {**msg, "mode": "exec", "files": build.files,
            "argv": languages.resolved(lang, tuple(lang.argv(job.memory_mb)))}


def _judge(answer: dict[str, Any], want: str, tests: StdioTests) -> TestVerdict:
    """The verdict of one case from what the child reported and the expected output."""
    ms = float(answer.get("ms", 0.0)) if isinstance(answer.get("ms"), int | float) else 0.0
    why = answer.get("why")
    if why == "timeout":
        return TestVerdict(status=TestStatus.TIMEOUT, duration_ms=ms, error="test timed out")
    if why == "output":
        return TestVerdict(status=TestStatus.FAILED, duration_ms=ms,
                           error="output over the cap")
    try:
        got = base64.b64decode(str(answer.get("out", "")), validate=True).decode(
            "utf-8", "replace")
    except (binascii.Error, ValueError):
        raise wire.WireError("unreadable output") from None
    rc, sig = answer.get("rc"), answer.get("sig")
    if sig:
        return TestVerdict(status=TestStatus.ERROR, duration_ms=ms,
                           error=_cut(f"killed by signal {sig}: {answer.get('err', '')}"))
    if rc != 0:
        return TestVerdict(status=TestStatus.ERROR, duration_ms=ms,
                           error=_cut(f"exit status {rc}: {answer.get('err', '')}"))
    why_not = outputs.mismatch(got, want, tests.compare, tests.float_tol)
    if why_not is not None:
        return TestVerdict(status=TestStatus.FAILED, duration_ms=ms, error=_cut(why_not))
    return TestVerdict(status=TestStatus.PASSED, duration_ms=ms)


def _case(child: Child, index: int, tests: StdioTests, timeout_s: float,
          ) -> tuple[TestVerdict, bool]:
    """Verdict of case `index` and whether the child can take the next case."""
    case = tests.cases[index]
    nonce = secrets.token_hex(8)
    start = time.monotonic()
    deadline = child.clock.start(STARVED_FACTOR * timeout_s + GRACE_S)
    try:
        child.send({"n": nonce, "input": case.input, "timeout_s": timeout_s}, deadline)
        answer = child.recv(nonce, deadline)
        return _judge(answer, case.output, tests), True
    except wire.Deadline:
        ms = round((time.monotonic() - start) * 1000.0, 3)
        return TestVerdict(status=TestStatus.TIMEOUT, duration_ms=ms,
                           error="test timed out"), False
    except (wire.WireError, OSError):
        return TestVerdict(status=TestStatus.KILLED, error="program ended"), False


def run_stdio(spawn: Callable[[], Child], job: Job) -> JobResult:
    """Run a `stdio` job to a result; `spawn` hands out a fresh sandboxed child."""
    tests = job.tests
    assert isinstance(tests, StdioTests)
    n = len(tests.cases)
    lang = languages.LANGUAGES[job.language]
    build: builds.Build | None = None
    if job.language != "python":
        build = builds.build(spawn, lang, job.code)
        if build.files is None:
            status = (RunStatus.COMPILE_ERROR if (build.error or "").startswith("compile error")
                      else RunStatus.KILLED)
            return JobResult.unrun(status, n, build.error)
    frame = _first_frame(job, lang, build, tests)
    budget = job.program_timeout_s
    end = time.monotonic() + (budget if budget is not None else
                              STARVED_FACTOR * (job.timeout_s + GRACE_S) * (n + 1))
    verdicts: list[TestVerdict] = []
    child: Child | None = None
    skipped = TestVerdict(status=TestStatus.NOT_RUN)
    try:
        while len(verdicts) < n:
            if time.monotonic() > end:
                skipped = session.OVER_BUDGET
                break
            if child is None:
                child, status, error = session.start(spawn, [frame], job.timeout_s + GRACE_S)
                if child is None:
                    if not verdicts:
                        return JobResult.unrun(status, n, error)
                    verdicts.append(session.reload_failed(status))
                    continue
            verdict, alive = _case(child, len(verdicts), tests, job.timeout_s)
            verdicts.append(verdict)
            if not alive:
                child.kill()
                child = None
            if job.stop_after_timeout and verdict.status is TestStatus.TIMEOUT:
                skipped = TestVerdict(status=TestStatus.NOT_RUN,
                                      error="not run: an earlier test timed out")
                break
    finally:
        if child is not None:
            child.kill()
    verdicts += [skipped] * (n - len(verdicts))
    return JobResult.from_tests(RunStatus.OK, verdicts)

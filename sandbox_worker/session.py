"""Supervises one job on the trusted side: loads the program in a child, judges each test.

Verdicts are decided here, never in the child: a test passes only when this process evaluated
its assert skeleton to a true value over plain data the child sent in answer to a request with
a fresh nonce. Exits, signals, stops, garbage or silence from the child end the test as
`killed`/`timeout`; later tests run in a freshly forked child.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable
from typing import Any

from sandbox_worker import compare, values, wire
from sandbox_worker.protocol import Job, JobResult, RunStatus, TestStatus, TestVerdict

log = logging.getLogger("codereward.sandbox")

ERROR_CHARS = 300  # longest error text in a verdict
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # largest value a program may send back for one hole
LOAD_GRACE_S = 1.0  # extra time for the first answer: child set-up (mounts) before the load


class Child:
    """Trusted handle on one sandboxed child: its two pipe ends and a pidfd."""

    def __init__(self, req_w: int, resp_r: int, pidfd: int, pid: int, *, pgroup: bool) -> None:
        self.req_w, self.resp_r, self.pidfd, self.pid, self.pgroup = (
            req_w, resp_r, pidfd, pid, pgroup)
        self.closed = False

    def request(self, msg: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Send a request and wait for the answer carrying the same nonce."""
        nonce = secrets.token_hex(8)
        wire.send(self.req_w, {**msg, "n": nonce})
        answer = wire.recv(self.resp_r, max_bytes=MAX_ANSWER_BYTES, deadline=deadline)
        if not isinstance(answer, dict) or answer.get("n") != nonce:
            raise wire.WireError("answer does not match the request")
        return answer

    def kill(self) -> None:
        """SIGKILL the child (pid-namespace init: everything it started dies with it)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        if self.pgroup:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
        for fd in (self.req_w, self.resp_r, self.pidfd):
            os.close(fd)


class ChildRaised(Exception):
    """The child answered that evaluation raised; `name` is the exception type."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(text)
        self.name, self.text = name, text


def _cut(text: object) -> str:
    return str(text)[:ERROR_CHARS]


def _load(spawn: Callable[[Job], Child], job: Job) -> tuple[Child | None, RunStatus, str | None]:
    child = spawn(job)
    deadline = time.monotonic() + job.timeout_s + LOAD_GRACE_S
    try:
        wire.send(child.req_w, {"code": job.code})
        answer = wire.recv(child.resp_r, max_bytes=64 * 1024, deadline=deadline)
    except wire.Deadline:
        child.kill()
        return None, RunStatus.TIMEOUT, "program load timed out"
    except (wire.WireError, OSError):
        child.kill()
        return None, RunStatus.KILLED, "program ended while loading"
    kind = answer.get("t") if isinstance(answer, dict) else None
    if kind == "ok":
        return child, RunStatus.OK, None
    child.kill()
    error = _cut(answer.get("e", "")) if isinstance(answer, dict) else None
    if kind == "syntax":
        return None, RunStatus.SYNTAX_ERROR, error
    if kind == "load":
        return None, RunStatus.LOAD_ERROR, error
    return None, RunStatus.KILLED, "program broke the harness protocol"


def _judge(child: Child, index: int, test: str, deadline: float) -> TestVerdict:
    plan = compare.make_plan(test)
    if plan.error:
        return TestVerdict(status=TestStatus.ERROR, error=plan.error)
    ns = "l" if plan.local else "g"

    def fetch(hole: compare.Hole) -> Any:
        answer = child.request({"op": "eval", "src": hole.src, "clean": hole.clean,
                                "ns": ns, "t": index}, deadline)
        if not answer.get("ok"):
            raise ChildRaised(_cut(answer.get("x")), _cut(answer.get("e")))
        return values.decode(answer.get("v"))

    for kind, step in plan.steps:
        if kind == "exec":
            answer = child.request({"op": "exec", "src": step, "ns": ns, "t": index}, deadline)
            if not answer.get("ok"):
                status = (TestStatus.FAILED if answer.get("x") == "AssertionError"
                          else TestStatus.ERROR)
                return TestVerdict(status=status, error=_cut(answer.get("e")))
            continue
        try:
            outcome = bool(compare.evaluate(step, fetch))
        except (ChildRaised, wire.WireError):
            raise
        except Exception as exc:  # the trusted evaluation itself raised (TypeError, ...)
            return TestVerdict(status=TestStatus.ERROR, error=_cut(f"{type(exc).__name__}: {exc}"))
        if not outcome:
            return TestVerdict(status=TestStatus.FAILED, error="AssertionError")
    return TestVerdict(status=TestStatus.PASSED)


def _one_test(child: Child, index: int, test: str, timeout_s: float) -> tuple[TestVerdict, bool]:
    """Verdict of one test and whether the child can go on."""
    start = time.monotonic()
    alive = True
    try:
        verdict = _judge(child, index, test, start + timeout_s)
    except ChildRaised as exc:
        verdict = TestVerdict(status=TestStatus.ERROR, error=exc.text or exc.name)
    except wire.Deadline:
        verdict, alive = TestVerdict(status=TestStatus.TIMEOUT, error="test timed out"), False
    except (wire.WireError, OSError):
        verdict, alive = TestVerdict(status=TestStatus.KILLED, error="program ended"), False
    ms = (time.monotonic() - start) * 1000.0
    return verdict.model_copy(update={"duration_ms": round(ms, 3)}), alive


def run_job(spawn: Callable[[Job], Child], job: Job) -> JobResult:
    """Run `job` to a result; `spawn` forks a fresh sandboxed child for it."""
    n = len(job.tests)
    budget_end = time.monotonic() + job.timeout_s * (n + 2) + 2 * LOAD_GRACE_S
    child, status, error = _load(spawn, job)
    if child is None:
        return JobResult.unrun(status, n, error)
    verdicts: list[TestVerdict] = []
    try:
        for i, test in enumerate(job.tests):
            if child is None:
                if time.monotonic() > budget_end:
                    break
                child, again, _ = _load(spawn, job)
                if child is None:
                    verdicts.append(TestVerdict(status=TestStatus.KILLED,
                                                error=f"reload failed: {again.value}"))
                    continue
            verdict, alive = _one_test(child, i, test, job.timeout_s)
            verdicts.append(verdict)
            if not alive:
                child.kill()
                child = None
    finally:
        if child is not None:
            child.kill()
    verdicts += [TestVerdict(status=TestStatus.NOT_RUN) for _ in range(n - len(verdicts))]
    return JobResult.from_tests(RunStatus.OK, verdicts)

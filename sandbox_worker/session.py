"""Supervises one job on the trusted side: loads the program in a child, judges each test.

Verdicts are decided here, never in the child: a test passes only when this process evaluated
its assert skeleton to a true value over plain data the child sent in answer to a request with
a fresh nonce. Exits, signals, stops, garbage or silence from the child end the test as
`killed`/`timeout`; later tests run in a freshly forked child. Expected sides that need no
program but cannot be computed here are evaluated in a fresh child that never loaded it.

Over 300 lines on purpose: the supervisor's per-test protocol (nonces, deadlines, child
restarts) is one state machine; splitting it would scatter the verdict rules.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import secrets
import select
import signal
import time
from collections.abc import Callable
from typing import Any

from sandbox_worker import broker, compare, names, observe, values, wire
from sandbox_worker.clock import STARVED_FACTOR, StarvationClock, host_pid
from sandbox_worker.protocol import Job, JobResult, RunStatus, TestStatus, TestVerdict

log = logging.getLogger("codereward.sandbox")

ERROR_CHARS = 300  # longest error text in a verdict
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # largest value a program may send back for one hole
LOAD_GRACE_S = 2.0  # extra time for the first answer: child set-up (mounts) before the load


class Child:
    """Trusted handle on one sandboxed child: its two pipe ends and a pidfd."""

    def __init__(self, req_w: int, resp_r: int, pidfd: int, pid: int, *, pgroup: bool) -> None:
        self.req_w, self.resp_r, self.pidfd, self.pid, self.pgroup = (
            req_w, resp_r, pidfd, pid, pgroup)
        os.set_blocking(req_w, False)  # writes carry deadlines: a child cannot stall us
        self.closed = False
        self.clock = StarvationClock(host_pid(pidfd))
        self.groups: list[Any] = []  # the executor's per-program cgroups, when it made any

    def _recv(self, deadline: float) -> Any:
        """Next frame; the deadline moves on while a busy host starves the child."""
        until = self.clock.wait(self.resp_r, deadline)
        return wire.recv(self.resp_r, max_bytes=MAX_ANSWER_BYTES, deadline=until)

    def frame(self, deadline: float) -> Any:
        """Next frame, whatever it is (the broker reads a clean child's questions)."""
        return self._recv(deadline)

    def exited(self) -> bool:
        """True when the child process has already ended (its pidfd is readable)."""
        return self.closed or bool(select.select([self.pidfd], [], [], 0)[0])

    def send(self, msg: dict[str, Any], deadline: float) -> None:
        """Write one request frame."""
        wire.send(self.req_w, msg, deadline)

    def recv(self, nonce: str, deadline: float) -> dict[str, Any]:
        """Read the answer that must carry `nonce`."""
        answer = self._recv(deadline)
        if not isinstance(answer, dict) or answer.get("n") != nonce:
            raise wire.WireError("answer does not match the request")
        return answer

    def request(self, msg: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Send a request with a fresh nonce and wait for its answer; comparisons the child
        observes on the way (asserts inside loops and functions) are judged here."""
        nonce = secrets.token_hex(8)
        self.send({**msg, "n": nonce}, deadline)
        while True:
            answer = self._recv(deadline)
            if not isinstance(answer, dict) or "obs" not in answer:
                break
            try:
                reply: dict[str, Any] = {"v": observe.judge_observation(answer["obs"])}
            except Exception as exc:  # TypeError of a comparison, or a malformed value
                reply = {"e": _cut(f"{type(exc).__name__}: {exc}")}
            self.send(reply, deadline)
        if answer.get("n") != nonce:
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


ChildRaised = broker.Raised  # the child answered that evaluation raised


def _cut(text: object) -> str:
    return str(text)[:ERROR_CHARS]


def start(spawn: Callable[[], Child], frames: list[dict[str, Any]], timeout_s: float,
          ) -> tuple[Child | None, RunStatus, str | None]:
    """A fresh child sent `frames` (the first loads the program; the rest are queued behind
    it), and the status of its first answer: the child when it is `ok`."""
    child = spawn()
    deadline = child.clock.start(timeout_s)
    queued = True
    try:
        child.send(frames[0], deadline)
        for frame in frames[1:]:
            try:
                child.send(frame, deadline)
            except BrokenPipeError:  # it answered a load error and ended: read that answer
                queued = False
                break
        answer = wire.recv(child.resp_r, max_bytes=64 * 1024,
                           deadline=child.clock.wait(child.resp_r, deadline))
    except wire.Deadline:
        child.kill()
        return None, RunStatus.TIMEOUT, "program load timed out"
    except (wire.WireError, OSError):
        child.kill()
        return None, RunStatus.KILLED, "program ended while loading"
    kind = answer.get("t") if isinstance(answer, dict) else None
    if kind == "ok" and queued:
        return child, RunStatus.OK, None
    child.kill()
    error = _cut(answer.get("e", "")) if isinstance(answer, dict) else None
    if kind == "syntax":
        return None, RunStatus.SYNTAX_ERROR, error
    if kind == "load":
        return None, RunStatus.LOAD_ERROR, error
    return None, RunStatus.KILLED, "program broke the harness protocol"


def load(spawn: Callable[[], Child], job: Job, then: dict[str, Any] | None = None,
         ) -> tuple[Child | None, RunStatus, str | None]:
    """Fresh child with the program loaded; `then` is queued right behind the code."""
    cpu_s = math.ceil(job.timeout_s * (job.n_tests() + 2)) + 1
    code = {"code": job.code, "memory_mb": job.memory_mb, "cpu_s": cpu_s}
    return start(spawn, [code] if then is None else [code, then],
                 job.timeout_s + LOAD_GRACE_S)


def reload_failed(status: RunStatus) -> TestVerdict:
    """The verdict of a test whose fresh child (after an earlier one ended) did not load."""
    return TestVerdict(status=TestStatus.KILLED, error=f"reload failed: {status.value}")


def _judge_assert(node: compare.Node, fetch: compare.Fetch) -> TestVerdict | None:
    """A failing verdict for one assert skeleton, or None when it held."""
    try:
        outcome, why = compare.judge(node, fetch)
    except broker.Refuted as exc:  # `assert np.testing.assert_allclose(...) is None`
        return TestVerdict(status=TestStatus.FAILED, error=_cut(exc.text or exc.name))
    except (ChildRaised, wire.WireError):
        raise
    except Exception as exc:  # the trusted evaluation itself raised (TypeError, ...)
        return TestVerdict(status=TestStatus.ERROR, error=_cut(f"{type(exc).__name__}: {exc}"))
    if outcome:
        return None
    return TestVerdict(status=TestStatus.FAILED, error=_cut(why or "AssertionError"))


def _load_clean(spawn: Callable[[], Child], job: Job) -> Child:
    """A fresh child with no program: the job's clean child (broker.CleanChild)."""
    helper, status, _ = load(spawn, job.model_copy(update={"code": ""}))
    if helper is None:
        raise (wire.Deadline if status is RunStatus.TIMEOUT else wire.WireError)(status.value)
    return helper


def _checked(ask: broker.Ask, hole: compare.Hole, env: dict[str, Any]) -> Any:
    """A program part's encoded value, decoded here first (it must be valid plain data)."""
    value = ask(hole, env).get("v")
    values.decode(value)
    return value


def _decoded(answer: dict[str, Any]) -> Any:
    """A hole's value; `Applied` when the child applied the hole's dispatch builtin."""
    value = values.decode(answer.get("v"))
    return compare.Applied(value) if answer.get("d") else value


def _checked_no_holes(hole: compare.Hole, env: dict[str, Any]) -> Any:
    raise wire.WireError("a skeleton without holes asked for one")


def _judge(child: Child, index: int, plan: compare.Plan, deadline: float,
           clean: broker.CleanChild | None = None) -> TestVerdict:
    ns = "l" if plan.local else "g"

    def ask(hole: compare.Hole, env: dict[str, Any]) -> Any:
        msg = {"op": "eval", "src": hole.src, "clean": hole.clean, "ns": ns, "t": index}
        if hole.consts:  # the test values its guarded operators read (objops.OBJOP_HOOK)
            env = {**env, **json.loads(hole.consts)}
        if hole.dispatch:
            msg["d"] = hole.dispatch
        if hole.operand:
            msg["c"] = json.loads(hole.operand)
        answer = child.request({**msg, "env": env} if env else msg, deadline)
        if not answer.get("ok"):
            raise ChildRaised(_cut(answer.get("x")), _cut(answer.get("e")))
        return answer

    def fetch(node: compare.Hole | compare.Skeleton) -> Any:
        if isinstance(node, compare.Skeleton):
            if clean is None:
                raise ValueError("this test needs a clean child")
            return clean.skeleton(node, functools.partial(_checked, ask), deadline, _cut)
        if node.clean and clean is not None:  # program-independent: never the program's child
            return clean.skeleton(compare.Skeleton(node.src, ()), _checked_no_holes, deadline,
                                  _cut)
        return _decoded(ask(node, {}))

    for kind, step in plan.steps:
        if kind == "exec":
            answer = child.request({"op": "exec", "src": step, "ns": ns, "t": index}, deadline)
            if not answer.get("ok"):
                status = (TestStatus.FAILED if answer.get("x") == "AssertionError"
                          else TestStatus.ERROR)
                return TestVerdict(status=status, error=_cut(answer.get("e")))
            continue
        failed = _judge_assert(step, fetch)
        if failed is not None:
            return failed
    return TestVerdict(status=TestStatus.PASSED)


def _timed(verdict: TestVerdict, start: float) -> TestVerdict:
    ms = round((time.monotonic() - start) * 1000.0, 3)
    return verdict.model_copy(update={"duration_ms": ms})


_TIMEOUT = TestVerdict(status=TestStatus.TIMEOUT, error="test timed out")
_NOT_RUN = TestVerdict(status=TestStatus.NOT_RUN)
_SKIPPED = TestVerdict(status=TestStatus.NOT_RUN, error="not run: an earlier test timed out")
OVER_BUDGET = TestVerdict(status=TestStatus.NOT_RUN,
                          error="not run: the program's time budget ran out")
_ENDED = TestVerdict(status=TestStatus.KILLED, error="program ended")


def _one_test(child: Child, index: int, plan: compare.Plan, timeout_s: float,
              clean: broker.CleanChild | None = None) -> tuple[TestVerdict, bool]:
    """Verdict of one test (one request per hole) and whether the child can go on."""
    if plan.error:
        return TestVerdict(status=TestStatus.ERROR, error=plan.error), True
    start = time.monotonic()
    try:
        verdict = _judge(child, index, plan, child.clock.start(timeout_s), clean)
        return _timed(verdict, start), True
    except ChildRaised as exc:
        return _timed(TestVerdict(status=TestStatus.ERROR, error=exc.text or exc.name), start), True
    except wire.Deadline:
        return _timed(_TIMEOUT, start), False
    except (wire.WireError, OSError):
        return _timed(_ENDED, start), False


class _Batch:
    """One request for a run of eager tests; the child streams one answer per hole."""

    def __init__(self, first: int, plans: list[compare.Plan]) -> None:
        self.first, self.plans = first, plans
        self.per_test = [compare.eager_holes(p) or [] for p in plans]
        self.nonces = [[secrets.token_hex(8) for _ in holes] for holes in self.per_test]
        self.msg = {"op": "batch", "items": [
            {"op": "eval", "src": h.src, "ns": "g", "t": first + k, "n": n,
             **({"d": h.dispatch} if h.dispatch else {}),
             **({"env": json.loads(h.consts)} if h.consts else {}),
             **({"c": json.loads(h.operand)} if h.operand else {})}
            for k, holes in enumerate(self.per_test)
            for h, n in zip(holes, self.nonces[k], strict=True)]}


def _batch(child: Child, batch: _Batch, timeout_s: float, sent: bool = False,
           end: float = math.inf) -> tuple[list[TestVerdict], bool]:
    """Judge a batch of eager tests: verdicts so far and whether the child can go on (not
    past the program's budget `end`: the rest of the batch is then still queued in it)."""
    plans, per_test, nonces = batch.plans, batch.per_test, batch.nonces
    clock = time.monotonic()
    verdicts: list[TestVerdict] = []
    try:
        if not sent:
            child.send(batch.msg, clock + timeout_s)
    except wire.Deadline:
        return [_timed(_TIMEOUT, clock)], False
    except (wire.WireError, OSError):
        return [_timed(_ENDED, clock)], False
    for plan, holes, test_nonces in zip(plans, per_test, nonces, strict=True):
        if time.monotonic() > end:
            return verdicts, False
        deadline = child.clock.start(timeout_s)
        got: dict[int, Any] = {}
        raised: ChildRaised | None = None
        try:
            for hole, nonce in zip(holes, test_nonces, strict=True):
                answer = child.recv(nonce, deadline)
                if not answer.get("ok"):
                    raised = raised or ChildRaised(_cut(answer.get("x")), _cut(answer.get("e")))
                got[id(hole)] = answer
        except wire.Deadline:
            return [*verdicts, _timed(_TIMEOUT, clock)], False
        except (wire.WireError, OSError):
            return [*verdicts, _timed(_ENDED, clock)], False
        if raised is not None:
            verdict = TestVerdict(status=TestStatus.ERROR, error=raised.text or raised.name)
        else:
            verdict = TestVerdict(status=TestStatus.PASSED)
            fetch = functools.partial(_prefetched, got)
            for _, step in plan.steps:
                failed = _judge_assert(step, fetch)
                if failed is not None:
                    verdict = failed
                    break
        verdicts.append(_timed(verdict, clock))
        clock = time.monotonic()
    return verdicts, True


def _prefetched(got: dict[int, Any], hole: compare.Hole | compare.Skeleton) -> Any:
    return _decoded(got[id(hole)])


def _eager_run(plans: list[compare.Plan], start: int) -> int:
    """How many tests from `start` on can go in one batch."""
    end = start
    while end < len(plans) and compare.eager_holes(plans[end]) is not None:
        end += 1
    return end - start


def run_job(spawn: Callable[[], Child], job: Job) -> JobResult:
    """Run `job` to a result; `spawn` hands out a fresh sandboxed child."""
    n = job.n_tests()
    # worst honest case: every test times out (starved: extended) and is reloaded after each
    budget_end = time.monotonic() + STARVED_FACTOR * (2 * job.timeout_s + LOAD_GRACE_S) * (n + 1)
    program = names.program_names(job.code)
    plans = [compare.make_plan(t, program.restrict(names.test_names(t))) for t in job.tests]
    clean = broker.CleanChild(functools.partial(_load_clean, spawn, job))
    first_run = _eager_run(plans, 0)
    pending = _Batch(0, plans[:first_run]) if first_run else None
    child, status, error = load(spawn, job, pending.msg if pending else None)
    if child is None:
        return JobResult.unrun(status, n, error)
    verdicts: list[TestVerdict] = []
    stopped = False  # job.stop_after_timeout ended the run: the rest are skipped
    # the whole-program budget (program_timeout_s): checked before each test or batch
    program_end = (time.monotonic() + job.program_timeout_s
                   if job.program_timeout_s is not None else math.inf)
    try:
        while len(verdicts) < n:
            i = len(verdicts)
            if time.monotonic() > program_end:
                break
            if child is None:
                if time.monotonic() > budget_end:
                    break
                child, again, _ = load(spawn, job)
                if child is None:
                    verdicts.append(reload_failed(again))
                    continue
            run = _eager_run(plans, i)
            if pending is not None:  # already queued behind the code
                more, alive = _batch(child, pending, job.timeout_s, sent=True, end=program_end)
                pending = None
            elif run:
                more, alive = _batch(child, _Batch(i, plans[i:i + run]), job.timeout_s,
                                     end=program_end)
            else:
                one, alive = _one_test(child, i, plans[i], job.timeout_s, clean)
                more = [one]
            verdicts.extend(more)
            if not alive:
                child.kill()
                child = None
            if job.stop_after_timeout and any(v.status is TestStatus.TIMEOUT for v in more):
                stopped = True
                break
    finally:
        clean.drop()
        if child is not None:
            child.kill()
    skipped = _SKIPPED if stopped else OVER_BUDGET if time.monotonic() > program_end else _NOT_RUN
    verdicts += [skipped] * (n - len(verdicts))
    return JobResult.from_tests(RunStatus.OK, verdicts)

"""Supervises a `call` job on the trusted side: the program's function on each case's arguments.

The program is loaded once in a child (as for asserts); each case is one eval request of
`fn(*args)` (or `Solution().fn(*args)` for LeetCode-style classes) with the arguments sent as
plain data, and the child answers the returned value as plain data. The expected values never
leave this process, and the comparison runs here (`same`): a program can only pass a case by
returning an equal value. Cases go to the child in batches (one round trip); a case that
times out or kills the child ends as `timeout`/`killed`, and the rest run in a fresh child.
"""

from __future__ import annotations

import ast
import json
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

from sandbox_worker import session, values, wire
from sandbox_worker.protocol import CallTests, Job, JobResult, RunStatus, TestStatus, TestVerdict
from sandbox_worker.session import Child

ERROR_CHARS = 300
ARGS = "__codereward_args__"  # the name the arguments are bound to in the eval's scope
BATCH_BYTES = 8 << 20  # argument bytes per batch request
SHOW_CHARS = 80
_TIMEOUT = TestVerdict(status=TestStatus.TIMEOUT, error="test timed out")
_ENDED = TestVerdict(status=TestStatus.KILLED, error="program ended")


def _cut(text: object) -> str:
    return str(text)[:ERROR_CHARS]


def _top_level(code: str) -> set[str] | None:
    """Names the program's top level defines (functions, classes, assignments, imports);
    None when it does not parse (its load then reports the syntax error)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            out.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            out.update(n.id for n in ast.walk(node)
                       if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load))
    return out


def target(code: str, fn_name: str) -> str | None:
    """The expression that calls the case's function with the arguments; None when the
    program binds neither `fn_name` nor a `Solution` class at its top level (a builtin or
    preloaded name of that spelling must not answer for a program that defines nothing)."""
    bound = _top_level(code)
    if bound is None or fn_name in bound:
        return f"{fn_name}(*{ARGS})"
    if "Solution" in bound:
        return f"Solution().{fn_name}(*{ARGS})"
    return None


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (APPS/TACO/LiveCodeBench compare them as equal)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _equal(got: Any, want: Any) -> bool:
    if isinstance(got, float) and math.isnan(got):
        return False
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(_equal(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(_equal(got[k], want[k]) for k in got)
    if isinstance(got, list | dict) or isinstance(want, list | dict):
        return False
    try:
        return bool(type(got) in (int, float, bool, str, type(None)) and got == want)
    except Exception:
        return False


def same(got: Any, want: Any) -> bool:
    """Whether a returned value matches the expected one: equal after tuples become lists, or
    (APPS/TACO wrap each expected value in a list) equal to the only element of `want`."""
    got, want = _plain(got), _plain(want)
    if _equal(got, want):
        return True
    return isinstance(want, list) and len(want) == 1 and _equal(got, want[0])


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, default=repr)
    except (ValueError, TypeError, RecursionError):
        text = "<unprintable>"
    return text if len(text) <= SHOW_CHARS else text[:SHOW_CHARS] + "..."


def _verdict(answer: dict[str, Any], want: Any, ms: float) -> TestVerdict:
    if not answer.get("ok"):
        return TestVerdict(status=TestStatus.ERROR, duration_ms=ms,
                           error=_cut(answer.get("e") or answer.get("x")))
    got = values.decode(answer.get("v"))
    if same(got, want):
        return TestVerdict(status=TestStatus.PASSED, duration_ms=ms)
    return TestVerdict(status=TestStatus.FAILED, duration_ms=ms,
                       error=_cut(f"expected {_show(want)}, got {_show(_plain(got))}"))


def _batches(tests: CallTests, src: str, start: int) -> list[tuple[dict[str, Any], list[str]]]:
    """Batch requests for cases from `start` on, each under BATCH_BYTES of arguments."""
    out: list[tuple[dict[str, Any], list[str]]] = []
    items: list[dict[str, Any]] = []
    nonces: list[str] = []
    size = 0
    for i in range(start, len(tests.inputs)):
        args = values.encode(list(tests.inputs[i]))
        nonce = secrets.token_hex(8)
        items.append({"op": "eval", "src": src, "ns": "g", "t": i, "n": nonce,
                      "env": {ARGS: args}})
        nonces.append(nonce)
        size += len(json.dumps(args))
        if size > BATCH_BYTES:
            out.append(({"op": "batch", "items": items}, nonces))
            items, nonces, size = [], [], 0
    if items:
        out.append(({"op": "batch", "items": items}, nonces))
    return out


def _run_from(child: Child, tests: CallTests, src: str, start: int, timeout_s: float,
              end: float) -> tuple[list[TestVerdict], bool]:
    """Verdicts of cases from `start` on in `child` until the program's budget `end`, and
    whether it is still usable."""
    verdicts: list[TestVerdict] = []
    for msg, nonces in _batches(tests, src, start):
        if time.monotonic() > end:
            return verdicts, False
        clock = time.monotonic()
        try:
            child.send(msg, clock + timeout_s)
        except wire.Deadline:
            return [*verdicts, _TIMEOUT], False
        except (wire.WireError, OSError):
            return [*verdicts, _ENDED], False
        for nonce in nonces:
            if time.monotonic() > end:  # the rest of this batch is still queued: drop child
                return verdicts, False
            i = start + len(verdicts)
            deadline = child.clock.start(timeout_s)
            try:
                answer = child.recv(nonce, deadline)
                ms = round((time.monotonic() - clock) * 1000.0, 3)
                verdicts.append(_verdict(answer, tests.outputs[i], ms))
            except wire.Deadline:
                ms = round((time.monotonic() - clock) * 1000.0, 3)
                return [*verdicts, TestVerdict(status=TestStatus.TIMEOUT, duration_ms=ms,
                                               error="test timed out")], False
            except (wire.WireError, OSError, values.DecodeError):
                return [*verdicts, TestVerdict(status=TestStatus.KILLED,
                                               error="program ended")], False
            clock = time.monotonic()
    return verdicts, True


def run_call(spawn: Callable[[], Child], job: Job) -> JobResult:
    """Run a `call` job to a result; `spawn` hands out a fresh sandboxed child."""
    tests = job.tests
    assert isinstance(tests, CallTests)
    n = len(tests.inputs)
    src = target(job.code, tests.fn_name)
    if src is None:  # still loaded: a load error is reported as one
        child, status, error = session.load(spawn, job)
        if child is None:
            return JobResult.unrun(status, n, error)
        child.kill()
        missing = TestVerdict(status=TestStatus.ERROR, error=_cut(
            f"the program defines no function {tests.fn_name!r} (nor a class Solution)"))
        return JobResult.from_tests(RunStatus.OK, [missing] * n)
    budget = job.program_timeout_s
    end = time.monotonic() + (budget if budget is not None else
                              3.0 * (2 * job.timeout_s + session.LOAD_GRACE_S) * (n + 1))
    verdicts: list[TestVerdict] = []
    skipped = TestVerdict(status=TestStatus.NOT_RUN)
    while len(verdicts) < n:
        if time.monotonic() > end:
            skipped = session.OVER_BUDGET
            break
        child, status, error = session.load(spawn, job)
        if child is None:
            if not verdicts:
                return JobResult.unrun(status, n, error)
            verdicts.append(session.reload_failed(status))
            continue
        try:
            more, _ = _run_from(child, tests, src, len(verdicts), job.timeout_s, end)
        finally:
            child.kill()
        verdicts.extend(more)
        if job.stop_after_timeout and any(v.status is TestStatus.TIMEOUT for v in more):
            skipped = TestVerdict(status=TestStatus.NOT_RUN,
                                  error="not run: an earlier test timed out")
            break
    if len(verdicts) < n and time.monotonic() > end:
        skipped = session.OVER_BUDGET
    verdicts += [skipped] * (n - len(verdicts))
    return JobResult.from_tests(RunStatus.OK, verdicts)

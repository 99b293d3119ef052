"""Executor: runs jobs in forked children (temporary simple version; hardened one follows)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import threading
import time

from sandbox_worker.protocol import Job, JobResult, RunStatus, TestStatus, TestVerdict

_ERR_CHARS = 300


def _child(job: Job, w: int) -> None:
    def send(obj: object) -> None:
        os.write(w, (json.dumps(obj) + "\n").encode())

    try:
        code = compile(job.code, "<program>", "exec")
    except (SyntaxError, ValueError) as exc:
        send({"load": "syntax", "error": str(exc)[:_ERR_CHARS]})
        return
    env: dict[str, object] = {"__name__": "__solution__"}
    try:
        exec(code, env)
    except BaseException as exc:
        send({"load": "error", "error": f"{type(exc).__name__}: {exc}"[:_ERR_CHARS]})
        return
    send({"load": "ok"})
    for test in job.tests:
        try:
            exec(compile(test, "<test>", "exec"), env)
            send({"s": "passed"})
        except AssertionError as exc:
            send({"s": "failed", "error": f"AssertionError: {exc}"[:_ERR_CHARS]})
        except BaseException as exc:
            send({"s": "error", "error": f"{type(exc).__name__}: {exc}"[:_ERR_CHARS]})


class Executor:
    """Pool of sandboxed program runs."""

    def __init__(self, workers: int, *, isolation: str = "auto") -> None:
        self._sem = threading.Semaphore(workers)
        self._closed = False

    @property
    def isolation(self) -> str:
        return "none"

    def start(self) -> None:
        """Start the pool."""

    def healthy(self) -> bool:
        return not self._closed

    def close(self) -> None:
        self._closed = True

    def run(self, job: Job) -> JobResult:
        """Run one job; never raises for anything the program does."""
        with self._sem:
            return self._run(job)

    def _run(self, job: Job) -> JobResult:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                _child(job, w)
            finally:
                os._exit(0)
        os.close(w)
        buf = b""
        lines: list[dict[str, str]] = []
        deadline = time.monotonic() + job.timeout_s * (len(job.tests) + 1)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                break
            chunk = os.read(r, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                lines.append(json.loads(line))
        os.close(r)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        n = len(job.tests)
        if not lines:
            return JobResult.unrun(RunStatus.TIMEOUT, n)
        head = lines[0]
        if head["load"] == "syntax":
            return JobResult.unrun(RunStatus.SYNTAX_ERROR, n, head.get("error"))
        if head["load"] == "error":
            return JobResult.unrun(RunStatus.LOAD_ERROR, n, head.get("error"))
        verdicts = [TestVerdict(status=TestStatus(x["s"]), error=x.get("error"))
                    for x in lines[1:n + 1]]
        verdicts += [TestVerdict(status=TestStatus.TIMEOUT)] * (n - len(verdicts))
        return JobResult.from_tests(RunStatus.OK, verdicts)

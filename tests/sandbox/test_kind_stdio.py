"""The `stdio` kind with Python programs, in the real sandbox: honest suites pass exactly,
hostile programs are contained and never pass a case."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from sandbox_worker.executor import Executor
from sandbox_worker.protocol import Job, JobResult, RunStatus, StdioTests

RunStdio = Callable[..., JobResult]


@pytest.fixture
def stdio(executor: Executor) -> RunStdio:
    def _run(code: str, cases: list[tuple[str, str]], *, timeout_s: float = 10.0,
             compare: str = "tokens", memory_mb: int = 512, **extra: object) -> JobResult:
        tests = StdioTests(kind="stdio", compare=compare,  # type: ignore[arg-type]
                           cases=[{"input": i, "output": o} for i, o in cases])  # type: ignore[misc]
        job = Job(code=code, tests=tests, timeout_s=timeout_s, memory_mb=memory_mb,
                  **extra)  # type: ignore[arg-type]
        result = executor.run(job)
        assert executor.healthy()
        return result
    return _run


SUM = "import sys\nnums = list(map(int, sys.stdin.read().split()))\nprint(sum(nums))\n"


def _statuses(result: JobResult) -> list[str]:
    return [t.status.value for t in result.tests]


def test_honest_program_passes_every_case(stdio: RunStdio) -> None:
    cases = [(f"{a} {b}\n", f"{a + b}\n") for a, b in ((1, 2), (10, 20), (-5, 5), (10**30, 1))]
    result = stdio(SUM, cases)
    assert result.status is RunStatus.OK
    assert result.passed == 4 and result.pass_rate == 1.0


def test_wrong_answer_on_one_case_is_one_failure(stdio: RunStdio) -> None:
    result = stdio(SUM, [("1 2", "3"), ("2 2", "5"), ("0", "0")])
    assert _statuses(result) == ["passed", "failed", "passed"]
    assert "expected '5', got '4'" in (result.tests[1].error or "")


def test_state_does_not_leak_between_cases(stdio: RunStdio) -> None:
    # each case is a fresh fork: a module-level counter starts from zero every time
    code = "import builtins\nbuiltins.count = getattr(builtins, 'count', 0) + 1\nprint(count)"
    result = stdio(code, [("", "1"), ("", "1"), ("", "1")])
    assert result.passed == 3


def test_input_and_exit_codes(stdio: RunStdio) -> None:
    code = "import sys\nline = input()\nprint(line[::-1])\nsys.exit(int(line) if line.isdigit() else 0)"
    result = stdio(code, [("abc\n", "cba"), ("0\n", "0"), ("12\n", "21")])
    assert _statuses(result) == ["passed", "passed", "error"]
    assert "exit status 12" in (result.tests[2].error or "")


def test_uncaught_exception_is_an_error_even_with_the_right_output(stdio: RunStdio) -> None:
    result = stdio("print(3)\nraise ValueError('late')", [("", "3")])
    assert _statuses(result) == ["error"]
    assert "ValueError" in (result.tests[0].error or "")


def test_compare_modes_are_applied(stdio: RunStdio) -> None:
    code = "print('0.3333333')\nprint('  x  ')"
    assert stdio(code, [("", "0.333333333 x")], compare="float").passed == 1
    assert stdio(code, [("", "0.333333333 x")], compare="tokens").passed == 0
    assert stdio(code, [("", "0.3333333\nx")], compare="lines").passed == 1
    assert stdio(code, [("", "0.3333333\nx\n")], compare="exact").passed == 0


def test_syntax_error_runs_nothing(stdio: RunStdio) -> None:
    result = stdio("def f(:\n", [("", "1"), ("", "2")])
    assert result.status is RunStatus.SYNTAX_ERROR and _statuses(result) == ["not_run"] * 2


def test_large_input_and_output(stdio: RunStdio) -> None:
    n = 200_000
    data = " ".join(str(i) for i in range(n))
    code = "import sys\nfor t in sys.stdin.read().split():\n    sys.stdout.write(t + '\\n')"
    assert stdio(code, [(data, data)]).passed == 1


# --- hostile programs ----------------------------------------------------------------------


def test_infinite_loop_times_out_and_later_cases_still_run(stdio: RunStdio) -> None:
    code = "n = int(input())\nwhile n: pass\nprint('done')"
    result = stdio(code, [("1", "done"), ("0", "done")], timeout_s=1.0)
    assert _statuses(result) == ["timeout", "passed"]


def test_fork_bomb_is_contained(stdio: RunStdio) -> None:
    code = "import os\nif input() == 'bomb':\n    while True:\n        try: os.fork()\n" \
           "        except OSError: pass\nprint('calm')"
    result = stdio(code, [("bomb", "calm"), ("no", "calm")], timeout_s=2.0)
    assert result.tests[0].status.value in ("timeout", "killed", "error")
    assert result.tests[1].status.value == "passed"


def test_memory_hog_fails(stdio: RunStdio) -> None:
    code = "x = bytearray(8 * 1024 ** 3)\nprint('3')"
    result = stdio(code, [("", "3")], memory_mb=256)
    assert result.passed == 0 and "MemoryError" in (result.tests[0].error or "")


def test_output_flood_is_cut(stdio: RunStdio) -> None:
    code = "while True: print('y' * 4096)"
    result = stdio(code, [("", "y")], timeout_s=5.0)
    assert _statuses(result) == ["failed"] and "over the cap" in (result.tests[0].error or "")


def test_exit_before_flushing_output_passes_nothing(stdio: RunStdio) -> None:
    code = "import os\nprint(3)\nos._exit(0)"
    assert stdio(code, [("", "3")]).passed == 0


def test_forged_verdicts_on_stdout_and_other_fds_do_not_count(stdio: RunStdio) -> None:
    code = """
import os, json, struct
frame = json.dumps({"n": "x", "ok": True, "t": "ok", "rc": 0, "out": ""}).encode()
for fd in range(3, 64):
    try: os.write(fd, struct.pack(">I", len(frame)) + frame)
    except OSError: pass
print('PASSED', 'ok', json.dumps({"status": "passed"}))
"""
    result = stdio(code, [("", secrets.token_hex(8)), ("", secrets.token_hex(8))])
    assert result.passed == 0 and _statuses(result) == ["failed", "failed"]


def test_program_cannot_find_the_expected_output(stdio: RunStdio, isolated: Executor) -> None:
    # the expected output never enters the sandbox: search memory, /proc and every fd for it
    secret = secrets.token_hex(16)
    code = r"""
import gc, os, re
found = set()
pat = re.compile(r'^[0-9a-f]{32}$')
for o in gc.get_objects():
    if isinstance(o, dict):
        for v in list(o.values()):
            if isinstance(v, str) and pat.match(v): found.add(v)
for path in ('/proc/1/cmdline', '/proc/1/environ', '/proc/1/mem', '/proc/self/environ'):
    try:
        data = open(path, 'rb').read(1 << 20).decode('latin-1')
        found.update(re.findall(r'[0-9a-f]{32}', data))
    except OSError: pass
for fd in range(64):
    try: found.update(re.findall(r'[0-9a-f]{32}', os.read(fd, 1 << 16).decode('latin-1')))
    except OSError: pass
print(' '.join(sorted(found)) or 'nothing')
"""
    result = stdio(code, [("", secret)])
    assert result.passed == 0


def test_writes_outside_the_sandbox_and_network_are_refused(stdio: RunStdio,
                                                            isolated: Executor) -> None:
    code = """
import socket
out = []
for path in ('/usr/cr-probe', '/etc/cr-probe', '/cr-probe'):
    try:
        open(path, 'w').write('x'); out.append('wrote')
    except OSError:
        out.append('denied')
try:
    socket.create_connection(('1.1.1.1', 80), timeout=1); out.append('online')
except OSError:
    out.append('offline')
open('/tmp/mine', 'w').write('ok')  # its own dir is writable
out.append(open('/tmp/mine').read())
print(' '.join(out))
"""
    assert stdio(code, [("", "denied denied denied offline ok")]).passed == 1


def test_leftover_processes_die_between_cases(stdio: RunStdio, isolated: Executor) -> None:
    code = """
import os, sys, time
if input() == 'spawn':
    if os.fork() == 0:
        os.setsid()
        time.sleep(30)
        os._exit(0)
    print('spawned')
else:
    time.sleep(0.2)
    procs = [p for p in os.listdir('/proc') if p.isdigit()]
    print(len(procs))  # the child (pid 1) and this case only
"""
    result = stdio(code, [("spawn", "spawned"), ("count", "2")])
    assert _statuses(result) == ["passed", "passed"]


def test_program_budget_and_stop_after_timeout(stdio: RunStdio) -> None:
    code = "import time\ntime.sleep(float(input()))\nprint('ok')"
    cases = [("0", "ok"), ("5", "ok"), ("0", "ok"), ("0", "ok")]
    stopped = stdio(code, cases, timeout_s=0.5, stop_after_timeout=True)
    assert _statuses(stopped) == ["passed", "timeout", "not_run", "not_run"]
    budget = stdio(code, [("0.4", "ok")] * 6, timeout_s=2.0, program_timeout_s=1.0)
    assert budget.tests[0].status.value == "passed"
    assert budget.tests[-1].status.value == "not_run"


def test_stopped_program_and_a_leftover_holding_stdout(stdio: RunStdio) -> None:
    stop = "import os, signal\nprint('3', flush=True)\nos.kill(os.getpid(), signal.SIGSTOP)"
    assert _statuses(stdio(stop, [("", "3")], timeout_s=1.0)) == ["timeout"]
    # the case exits at once, but a leftover keeps its stdout open and prints later
    held = ("import os, time\nif os.fork() == 0:\n    time.sleep(0.5)\n    print('4')\n"
            "    os._exit(0)\nprint('3')")
    result = stdio(held, [("", "3"), ("", "3")], timeout_s=5.0)
    assert _statuses(result) == ["passed", "passed"]

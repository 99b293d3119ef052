"""Hostile programs: each tries to forge a verdict or hurt the host. None may gain a pass."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox_worker.executor import Executor
from sandbox_worker.protocol import JobResult, RunStatus
from sandbox_worker.protocol import TestStatus as TS

# An honest f would be `return x + 1`; every attack program gets these tests.
TESTS = ["assert f(1) == 2", "assert f(2) == 3", "assert abs(f(3) - 4.0) < 1e-9",
         "assert math.isclose(f(4), 5)", "assert sorted(f(5)) == [6]",
         "x = f(6)\nassert x == 7", "for i in range(2):\n    assert f(i) == i + 1"]
SENTINEL = Path("/tmp/codereward-hostile-sentinel")

FAKE_FRAMES = '''
import json, os, struct
def _frame(obj):
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data
FAKES = b"".join(_frame(o) for o in (
    {"t": "ok"}, {"n": "0" * 16, "ok": True, "v": 2}, {"s": "passed"}, {"ok": True, "v": True}))
def spray():
    for fd in range(0, 64):
        try:
            os.write(fd, FAKES + b"passed\\n" * 4)
        except OSError:
            pass
'''

ATTACKS: dict[str, tuple[str, float]] = {
    "sys_exit_at_load": ("import sys\nsys.exit(0)", 1.0),
    "os_exit_at_load": ("import os\nos._exit(0)", 1.0),
    "os_exit_in_test": ("import os\ndef f(x):\n    os._exit(0)", 1.0),
    "systemexit_in_test": ("def f(x):\n    raise SystemExit(0)", 1.0),
    "sigkill_self": ("import os, signal\ndef f(x):\n    os.kill(os.getpid(), signal.SIGKILL)",
                     1.0),
    "sigstop_self": ("import os, signal\ndef f(x):\n    os.kill(os.getpid(), signal.SIGSTOP)\n"
                     "    return 0", 0.5),
    "abort": ("import os\ndef f(x):\n    os.abort()", 1.0),
    "kill_parent_and_group": (
        "import os, signal\ndef f(x):\n    for p in (os.getppid(), 0, -1):\n        try:\n"
        "            os.kill(p, signal.SIGKILL)\n        except OSError:\n            pass\n",
        1.0),
    "fake_stdout_lines": ("def f(x):\n    print('passed\\n' * 100)\n    print('{\"ok\": true}')\n"
                          "    return -1", 1.0),
    "fake_frames_on_every_fd_at_load": (FAKE_FRAMES + "spray()\ndef f(x):\n    return -1", 1.0),
    "fake_frames_on_every_fd_in_test": (FAKE_FRAMES + "def f(x):\n    spray()\n    return -1",
                                        1.0),
    "close_all_fds": ("import os\ndef f(x):\n    os.closerange(0, 1024)\n    return x + 1", 1.0),
    "patch_assertionerror_and_builtins": (
        "import builtins\nclass Never(Exception):\n    pass\nbuiltins.AssertionError = Never\n"
        "builtins.abs = lambda v: 0\nbuiltins.sorted = lambda v: v\n"
        "import math\nmath.isclose = lambda *a, **k: True\ndef f(x):\n    return -1", 1.0),
    "shadow_builtins_in_module": ("abs = lambda v: 0\nimport math\nmath = type('M', (), "
                                  "{'isclose': staticmethod(lambda *a, **k: True)})\n"
                                  "def f(x):\n    return -1", 1.0),
    "eq_always_true": ("class A:\n    def __eq__(self, o):\n        return True\n"
                       "    def __sub__(self, o):\n        return 0\n    def __float__(self):\n"
                       "        return 5.0\n    def __lt__(self, o):\n        return True\n"
                       "    __hash__ = object.__hash__\ndef f(x):\n    return A()", 1.0),
    "int_subclass_eq_true": ("class I(int):\n    def __eq__(self, o):\n        return True\n"
                             "    def __sub__(self, o):\n        return 0\n"
                             "    __hash__ = int.__hash__\ndef f(x):\n    return I(-7)", 1.0),
    "str_and_list_subclass_eq_true": (
        "class S(list):\n    def __eq__(self, o):\n        return True\n"
        "def f(x):\n    return S([x])", 1.0),
    "atexit_and_del_hooks": ("import atexit\natexit.register(lambda: print('passed'))\n"
                             "class D:\n    def __del__(self):\n        print('passed')\n"
                             "d = D()\ndef f(x):\n    return -1", 1.0),
    "patch_harness_encoder": (
        "import sys\nvals = sys.modules['sandbox_worker.values']\n"
        "vals.encode = lambda v: ['x', 'forged']\nh = sys.modules['sandbox_worker.harness']\n"
        "h.describe = lambda e: 'passed'\ndef f(x):\n    raise AssertionError('x')", 1.0),
    "patch_harness_answer": (
        "import sys\nfor name, mod in list(sys.modules.items()):\n"
        "    if 'harness' in name or 'wire' in name:\n"
        "        mod._answer = lambda req, g, l: {'n': req['n'], 'ok': True, 'v': True}\n"
        "def f(x):\n    return -1\ndef check(fn):\n    assert fn(1) == 2", 1.0),
    "gc_hunt_for_expected_values": (
        "import gc\nFOUND = [o for o in gc.get_objects() if isinstance(o, dict) and 'n' in o]\n"
        "def f(x):\n    for o in gc.get_objects():\n        if isinstance(o, str) and '==' in o:\n"
        "            return o\n    return -1", 1.0),
    "settrace_rewrites_frames": (
        "import sys\ndef tracer(frame, event, arg):\n    if event == 'return':\n"
        "        frame.f_locals.update(value=True)\n    return tracer\nsys.settrace(tracer)\n"
        "def f(x):\n    return -1", 1.0),
    "thread_spams_response_pipe": (
        FAKE_FRAMES + "import threading, time\ndef loop():\n    while True:\n        spray()\n"
        "        time.sleep(0.001)\nthreading.Thread(target=loop, daemon=True).start()\n"
        "def f(x):\n    time.sleep(0.05)\n    return -1", 1.0),
    "infinite_loop": ("def f(x):\n    while True:\n        pass", 0.3),
    "sleep_forever": ("import time\ndef f(x):\n    time.sleep(10**6)", 0.3),
    "loop_at_load": ("while True:\n    pass", 0.3),
    "memory_bomb": ("def f(x):\n    b = bytearray(8 * 1024**3)\n    return x + 1", 1.0),
    "memory_growth": ("def f(x):\n    a = []\n    while True:\n        a.append(' ' * 10**7)",
                      1.0),
    "fork_bomb": ("import os\ndef f(x):\n    while True:\n        try:\n            os.fork()\n"
                  "        except OSError:\n            pass", 0.5),
    "output_flood": ("import sys\ndef f(x):\n    while True:\n        sys.stdout.write('x' * 65536)\n"
                     "        sys.stderr.write('y' * 65536)", 0.3),
    "deep_recursion": ("import sys\nsys.setrecursionlimit(10**7)\ndef f(x):\n    return f(x + 1)",
                       1.0),
    "thread_spam": ("import threading, time\ndef f(x):\n    while True:\n"
                    "        threading.Thread(target=time.sleep, args=(100,)).start()", 0.5),
    "disk_fill": ("def f(x):\n    with open('/tmp/fill', 'wb') as fh:\n        while True:\n"
                  "            fh.write(b'x' * 2**20)", 1.0),
    "network_and_dns": ("import socket\ndef f(x):\n    socket.getaddrinfo('example.com', 80)\n"
                        "    socket.create_connection(('1.1.1.1', 53), timeout=0.2)\n"
                        "    return x + 1", 1.0),
    "write_outside_sandbox": (f"def f(x):\n    open({str(SENTINEL)!r}, 'w').write('pwned')\n"
                              "    open('/usr/pwned', 'w').write('pwned')\n    return x + 1", 1.0),
    "huge_return_value": ("def f(x):\n    return [0] * (10**8)", 1.0),
    "cyclic_return_value": ("def f(x):\n    a = []\n    a.append(a)\n    return a", 1.0),
    "generator_that_never_ends": ("import itertools\ndef f(x):\n    return itertools.count()",
                                  0.3),
    "syntax_error": ("def f(x) return x + 1", 1.0),
    "huge_exception_message": ("def f(x):\n    raise ValueError('passed ' * 10**6)", 1.0),
    "exception_with_hostile_str": ("class E(Exception):\n    def __str__(self):\n"
                                   "        while True:\n            pass\n"
                                   "def f(x):\n    raise E()", 0.3),
}


# Programs that take over the harness from inside (frames, closures) to answer for statements
# the child runs. Every test shape below is judged on the trusted side, so they must gain nothing.
FORGERS = {
    "answer_ok_from_frames_then_exit": """
import json, os, struct, sys
def f(x):
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "_answer":
            req, wfd = frame.f_locals["req"], frame.f_back.f_locals["wfd"]
            for answer in ({"n": req["n"], "ok": True}, {"n": req["n"], "ok": True, "v": True}):
                data = json.dumps(answer).encode()
                os.write(wfd, struct.pack(">I", len(data)) + data)
            os._exit(0)
        frame = frame.f_back
    return -1
""",
    "observer_patched_to_agree": """
import sys
def f(x):
    hook = sys._getframe(1).f_globals.get("__codereward_compare__")
    if hook is not None and hook.__closure__:
        for cell in hook.__closure__:
            if getattr(cell.cell_contents, "__name__", "") == "recv":
                cell.cell_contents = lambda *a, **k: {"v": True}
            elif getattr(cell.cell_contents, "__name__", "") == "send":
                cell.cell_contents = lambda *a, **k: None
    return -1
""",
    "reads_expected_side_from_the_batch": """
import sys
def g(x):
    frame = sys._getframe()
    while frame is not None:
        req = frame.f_locals.get("req") if frame.f_code.co_name == "serve" else None
        if isinstance(req, dict) and req.get("op") == "batch":
            srcs = [item["src"] for item in req["items"]]
            mine = srcs.index(f"g({x!r})")
            if mine + 1 < len(srcs):
                return eval(srcs[mine + 1])
        frame = frame.f_back
    return -1
""",
    "answers_clean_holes_itself": """
import sys, types
def _evil(req, glb, local, _orig=None):
    if req.get("clean"):  # an expected side the trusted side could not compute
        return {"n": req["n"], "ok": True, "v": "forged"}
    return _orig(req, glb, local)
def h(x):
    frame = sys._getframe()
    while frame is not None:
        fn = frame.f_locals.get("_answer") if frame.f_code.co_name == "serve" else None
        if fn is not None and fn.__code__ is not _evil.__code__:
            orig = types.FunctionType(fn.__code__, fn.__globals__)
            fn.__code__, fn.__defaults__ = _evil.__code__, (None, orig)
        frame = frame.f_back
    return "forged"
""",
    "patch_math_isclose": "import math\nmath.isclose = lambda *a, **k: True\ndef f(x):\n"
                          "    return -1",
}
FORGED_SHAPES = [
    "for i in range(2):\n    assert f(i) == i + 1",
    "for x, y in [(1, 2), (2, 3)]:\n    assert f(x) == y",
    "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(2) == 3\ncheck(f)",
    "import math\nassert math.isclose(f(1), 2)",
    "from math import isclose\nassert isclose(f(1), 2)",
    "def check(candidate):\n    import math\n    for i in range(3):\n"
    "        assert math.isclose(candidate(i), i + 1)\ncheck(f)",
    "for i in range(2):\n    for j in range(2):\n        assert f(i + j) == i + j + 1",
    "assert h(1) == 'abc'.upper()",
    "assert h(2) == ''.join(['x', 'y'])",
    "assert g(1) == Point(2, 3)",
    "assert g(2) == Point(4, 5)",
]
POINT = "import dataclasses\n@dataclasses.dataclass\nclass Point:\n    x: int\n    y: int\n"
HONEST_FG = POINT + "def f(x):\n    return x + 1\ndef g(x):\n    return Point(2 * x, 2 * x + 1)\n"
HONEST_FG += "def h(x):\n    return 'ABC' if x == 1 else 'xy'"


@pytest.mark.parametrize("name", sorted(FORGERS))
def test_harness_takeover_gains_no_pass(name: str, run: Callable[..., JobResult]) -> None:
    result = run(POINT + FORGERS[name], FORGED_SHAPES, timeout_s=2.0)
    assert result.passed == 0, result
    honest = run(HONEST_FG, FORGED_SHAPES)
    assert honest.passed == len(FORGED_SHAPES), honest


# Small answers that would make the trusted side (the service process) build something huge
# or compute for minutes: each must end as an error naming the guard, fast.
AMPLIFIERS = {
    "range_sorted": ("def f(x):\n    return range(9_999_999)",
                     "assert sorted(f(1), reverse=True) == [1]"),
    "format_width": ("def f(x):\n    return '%0999999999d'", "assert f(1) % 5 == '5'"),
    "bytearray_repeat": ("def f(x):\n    return bytearray(100)", "assert f(1) * 10**8 == b''"),
    "big_int_product": ("def f(x):\n    return 1 << 5_000_000",
                        "assert f(1) * 10 ** 30000 == 1"),
    "decimal_exponent": ("from decimal import Decimal\ndef f(x):\n"
                         "    return Decimal('1e999999999')", "assert math.floor(f(1) + 0) == 1"),
}


@pytest.mark.parametrize("name", sorted(AMPLIFIERS))
def test_trusted_side_refuses_amplification(name: str, run: Callable[..., JobResult]) -> None:
    code, test = AMPLIFIERS[name]
    result = run(code, [test])
    assert result.tests[0].status is TS.ERROR, result
    assert "too large" in (result.tests[0].error or ""), result


def test_product_of_two_program_values_runs_in_the_child(run: Callable[..., JobResult]) -> None:
    # both operands are the program's: the child multiplies (within its limits), and the
    # failed comparison reports a 10-million-bit int by its size, not by a repr() that raises
    result = run("def f(x):\n    return 1 << 5_000_000", ["assert f(1) * f(2) == 1"])
    assert result.tests[0].status is TS.FAILED, result
    assert "<int of 10000001 bits> == 1" in (result.tests[0].error or ""), result


NUMPY_ASSERTS = ["np.testing.assert_array_equal(arange(3), np.array([0, 1, 2]))",
                 "import numpy\nnumpy.testing.assert_allclose(arange(2) / 3, [0.0, 1 / 3])",
                 "from numpy.testing import assert_array_equal as same\nsame(arange(1), [0])"]


def test_numpy_assert_functions_are_judged_in_a_clean_child(run: Callable[..., JobResult]
                                                             ) -> None:
    # a statement in the child, `np.testing.assert_array_equal(...)` passed every program
    # that replaced it with a no-op; as a trusted skeleton its AssertionError fails the test
    honest = "import numpy as np\ndef arange(n):\n    return np.arange(n)\n"
    assert [t.status for t in run(honest, NUMPY_ASSERTS).tests] == [TS.PASSED] * 3
    wrong = honest.replace("np.arange(n)", "np.arange(n) + 1")
    assert [t.status for t in run(wrong, NUMPY_ASSERTS).tests] == [TS.FAILED] * 3
    # arrays inside tuples and dicts reach the clean child as arrays too
    nested = ("import numpy as np\ndef pair():\n    return (np.arange(2), {'a': np.ones(2)})\n",
              ["import numpy as np\nnp.testing.assert_equal(pair(), (np.arange(2), "
               "{'a': np.ones(2)}))",
               "import numpy as np\nnp.testing.assert_equal(pair(), (np.arange(2), "
               "{'a': np.zeros(2)}))"])
    assert [t.status for t in run(*nested).tests] == [TS.PASSED, TS.FAILED]
    patched = ("import numpy as np\nimport numpy.testing as t\n"
               "for name in dir(t):\n    if name.startswith('assert'):\n"
               "        setattr(t, name, lambda *a, **k: None)\n"
               "def arange(n):\n    return np.arange(n) + 1\n")
    assert run(patched, NUMPY_ASSERTS).passed == 0


@pytest.mark.xfail(strict=True, reason="known weak path: statements the trusted side cannot "
                   "flatten (while loops, try blocks, helpers) run in the child and a program "
                   "that walks the interpreter's frames can answer for them")
def test_takeover_of_statements_run_in_the_child(run: Callable[..., JobResult]) -> None:
    tests = ["i = 0\nwhile i < 2:\n    assert f(i) == i + 1\n    i += 1"]
    result = run(FORGERS["answer_ok_from_frames_then_exit"], tests, timeout_s=2.0)
    assert result.passed == 0, result


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_gains_no_pass(name: str, run: Callable[..., JobResult],
                              executor: Executor) -> None:
    code, timeout_s = ATTACKS[name]
    result = run(code, TESTS, timeout_s=timeout_s, memory_mb=256)
    assert result.passed == 0, result
    assert result.pass_rate == 0.0
    assert result.total == len(TESTS) == len(result.tests)
    assert result.status in set(RunStatus)
    assert all(t.status is not TS.PASSED for t in result.tests)
    assert all(t.error is None or len(t.error) <= 300 for t in result.tests)
    # the pool still serves an honest program correctly right after
    ok = run("def f(x):\n    return x + 1", ["assert f(1) == 2"])
    assert ok.passed == 1


def test_specific_statuses(run: Callable[..., JobResult]) -> None:
    # generous limits wherever the status is not a timeout: a loaded box only slows these down
    assert run(*_attack("syntax_error")).status is RunStatus.SYNTAX_ERROR
    assert run(*_attack("sys_exit_at_load")).status is RunStatus.LOAD_ERROR
    assert run(*_attack("os_exit_at_load")).status is RunStatus.KILLED
    assert run(*_attack("loop_at_load"), timeout_s=0.3).status is RunStatus.TIMEOUT
    loop = run(ATTACKS["infinite_loop"][0], TESTS[:2], timeout_s=0.5)
    assert loop.status is RunStatus.OK
    assert {t.status for t in loop.tests} == {TS.TIMEOUT}
    exits = run(*_attack("os_exit_in_test"))
    assert {t.status for t in exits.tests} == {TS.KILLED}


def _attack(name: str) -> tuple[str, list[str]]:
    return ATTACKS[name][0], TESTS


def test_timeout_then_later_tests_still_run(run: Callable[..., JobResult]) -> None:
    code = "def f(x):\n    while x == 1:\n        pass\n    return x + 1"
    result = run(code, ["assert f(1) == 2", "assert f(2) == 3", "assert f(3) == 4"],
                 timeout_s=1.5)  # long enough for the honest tests on a loaded box
    assert [t.status for t in result.tests] == [TS.TIMEOUT, TS.PASSED,
                                                TS.PASSED]
    assert result.passed == 2


def test_nothing_written_outside_and_no_survivors(isolated: Executor,
                                                  run: Callable[..., JobResult]) -> None:
    run(*_attack("write_outside_sandbox"))
    assert not SENTINEL.exists()
    assert not Path("/usr/pwned").exists()
    # a daemon that renames itself and leaves the program's session must still die with it
    run("import ctypes, os, time\nif os.fork() == 0:\n    os.setsid()\n"
        "    ctypes.CDLL(None).prctl(15, b'crsurvivor', 0, 0, 0)\n    time.sleep(1000)\n"
        "time.sleep(0.2)\ndef f(x):\n    return x", ["assert f(1) == 1"])
    for _ in range(50):
        out = subprocess.run(["ps", "-eo", "comm"], capture_output=True, text=True).stdout
        if "crsurvivor" not in out.split():
            break
        time.sleep(0.1)
    assert "crsurvivor" not in out.split()


@pytest.mark.xfail(strict=True, reason="known weak path: an expected side that needs the "
                   "program (its own class) is evaluated in the program's child, so a "
                   "constructor that records its arguments learns it, here before answering")
def test_expected_side_built_by_the_program_first(run: Callable[..., JobResult]) -> None:
    code = ("SEEN = []\nclass Point:\n    def __init__(self, x, y):\n"
            "        self.x, self.y = x, y\n        SEEN.append((x, y))\n"
            "def g(v):\n    return Point(*SEEN[-1]) if SEEN else None")
    result = run(code, ["assert Point(2, 3) == g(1)"])
    assert result.passed == 0, result

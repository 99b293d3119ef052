"""The `call` kind (APPS/TACO `fn_name`, LiveCodeBench functional, LeetCode `class Solution`),
in the real sandbox: honest suites pass exactly, forged answers never pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandbox_worker.executor import Executor
from sandbox_worker.kinds.call import same
from sandbox_worker.protocol import CallTests, Job, JobResult, RunStatus

RunCall = Callable[..., JobResult]


@pytest.fixture
def call(executor: Executor) -> RunCall:
    def _run(code: str, fn_name: str, inputs: list[list[Any]], outputs: list[Any], *,
             timeout_s: float = 10.0, memory_mb: int = 512) -> JobResult:
        tests = CallTests(kind="call", fn_name=fn_name, inputs=inputs, outputs=outputs)
        result = executor.run(Job(code=code, tests=tests, timeout_s=timeout_s,
                                  memory_mb=memory_mb))
        assert executor.healthy()
        return result
    return _run


def _statuses(result: JobResult) -> list[str]:
    return [t.status.value for t in result.tests]


@pytest.mark.parametrize(("got", "want", "ok"), [
    ((1, 2), [1, 2], True),  # tuples compare as lists
    ([(1, 2), (3,)], [[1, 2], [3]], True),
    (3, [3], True),  # APPS/TACO wrap each expected value in a one-element list
    ([3], [[3]], True),
    (3, [3, 3], False),
    (1.0, 1, True),
    (True, 1, True),  # Python equality, as the reference harnesses use
    (float("nan"), float("nan"), False),
    ({"a": [1]}, {"a": [1]}, True),
    ({1: 2}, {"1": 2}, False),
    ("3", 3, False),
    ({1, 2}, [1, 2], False),
    (None, None, True),
])
def test_same(got: Any, want: Any, ok: bool) -> None:
    assert same(got, want) is ok


def test_function_and_solution_class(call: RunCall) -> None:
    fn = call("def add(a, b):\n    return a + b", "add", [[1, 2], [3, 4], [0, 0]], [3, [7], 1])
    assert _statuses(fn) == ["passed", "passed", "failed"]
    assert "expected 1, got 0" in (fn.tests[2].error or "")
    leet = ("class Solution:\n    def twoSum(self, nums, target):\n"
            "        seen = {}\n        for i, x in enumerate(nums):\n"
            "            if target - x in seen:\n                return [seen[target - x], i]\n"
            "            seen[x] = i\n")
    result = call(leet, "twoSum", [[[2, 7, 11, 15], 9], [[3, 2, 4], 6]], [[0, 1], [1, 2]])
    assert result.passed == 2


def test_arguments_are_fresh_per_case_and_mutation_does_not_leak(call: RunCall) -> None:
    code = "def f(xs):\n    xs.append(1)\n    return len(xs)"
    assert call(code, "f", [[[0]], [[0]]], [2, 2]).passed == 2


def test_raising_missing_and_load_errors(call: RunCall) -> None:
    code = "def f(x):\n    return 10 // x"
    assert _statuses(call(code, "f", [[1], [0]], [10, 0])) == ["passed", "error"]
    missing = call("def g(): pass", "f", [[1]], [1])
    assert _statuses(missing) == ["error"] and "defines no function" in (missing.tests[0].error or "")
    # a builtin of the same name never answers for a program that defines nothing
    assert call("x = 1", "sorted", [[[2, 1]]], [[1, 2]]).passed == 0
    assert call("def f(:", "f", [[1]], [1]).status is RunStatus.SYNTAX_ERROR
    assert call("raise SystemExit(0)", "f", [[1]], [1]).status is RunStatus.LOAD_ERROR


def test_loop_times_out_and_the_next_case_runs_in_a_fresh_child(call: RunCall) -> None:
    code = "def f(x):\n    while x: pass\n    return 1"
    result = call(code, "f", [[0], [1], [0]], [1, 1, 1], timeout_s=1.0)
    assert _statuses(result) == ["passed", "timeout", "passed"]


def test_forged_return_values_do_not_pass(call: RunCall) -> None:
    # objects that claim equality with everything, and a child that ends itself
    code = """
import os
class Any:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
def f(kind):
    if kind == 'any': return Any()
    if kind == 'list': return [Any()]
    if kind == 'exit': os._exit(0)
    if kind == 'raise': raise SystemExit(0)
"""
    result = call(code, "f", [["any"], ["list"], ["exit"], ["raise"]], [5, [5], 5, 5])
    assert result.passed == 0
    assert _statuses(result)[2] == "killed"
    patched = "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.len = lambda x: 5\n" \
              "def f(x):\n    return x"
    assert call(patched, "f", [[1], [[5]]], [5, 5]).passed == 0


def test_memory_hog_and_fork_bomb(call: RunCall) -> None:
    code = ("import os\ndef f(k):\n    if k == 'mem':\n        return len(bytearray(8 << 30))\n"
            "    while True:\n        try: os.fork()\n        except OSError: pass\n")
    result = call(code, "f", [["mem"], ["fork"]], [1, 1], timeout_s=2.0, memory_mb=256)
    assert result.passed == 0
    assert "MemoryError" in (result.tests[0].error or "")

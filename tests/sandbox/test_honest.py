"""Honest programs must keep passing: the trusted comparison keeps Python's == semantics."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import pytest

from sandbox_worker.protocol import JobResult, RunStatus
from sandbox_worker.protocol import TestStatus as TS

# tests the trusted side flattens (check functions inlined, constant loops unrolled) or runs
# in the child as they are; each must keep Python's meaning
LOOP_SHAPES = [
    "for i in range(3):\n    assert f(i) == i + 1",
    "for x, y in [(1, 2), (5, 6)]:\n    assert f(x) == y",
    "def check(candidate):\n    \"\"\"Doc.\"\"\"\n    import math\n    assert candidate(1) == 2\n"
    "    for i in range(2):\n        assert math.isclose(candidate(i), i + 1)\n"
    "    r = candidate(3)\n    assert r == 4\ncheck(f)",
    "for i in range(2):\n    assert f(i) == i + 1\nassert i == 1",
    "def check(candidate):\n    def helper(v):\n        return candidate(v) - 1\n"
    "    assert helper(1) == 1\ncheck(f)",
    "total = 0\nfor i in range(3):\n    total += f(i)\nassert total == 6",
    "for s in ['a', '']:\n    assert isinstance(f(len(s)), int)",
    "for i in range(2):\n    for j in range(i, 3):\n        assert f(i) + j == i + j + 1",
    "for i in range(2):\n    for j in range(2):\n        assert f(j) == j + 1\n    assert j == 1",
]

HONEST: dict[str, tuple[str, list[str]]] = {
    "ints_and_strings": ("def add(a, b):\n    return a + b",
                         ["assert add(1, 2) == 3", "assert add('a', 'b') == 'ab'",
                          "assert add(10**30, 1) == 10**30 + 1", "assert add(-1, 1) == 0"]),
    "floats_exact_like_python": ("def add(a, b):\n    return a + b",
                                 ["assert add(0.1, 0.2) == 0.30000000000000004",
                                  "assert add(0.1, 0.2) != 0.3", "assert add(1, 1.0) == 2",
                                  "assert abs(add(0.1, 0.2) - 0.3) < 1e-9",
                                  "assert math.isclose(add(0.1, 0.2), 0.3)",
                                  "assert round(add(0.1, 0.2), 2) == 0.3",
                                  "assert add(float('inf'), 1) == float('inf')"]),
    "containers": ("def f(x):\n    return {'a': [1, (2, 3)], 'b': {4, 5}, 'c': frozenset([6])}",
                   ["assert f(0) == {'b': {5, 4}, 'a': [1, (2, 3)], 'c': frozenset({6})}",
                    "assert f(0)['a'][1] == (2, 3)", "assert len(f(0)) == 3",
                    "assert 'a' in f(0)", "assert sorted(f(0)) == ['a', 'b', 'c']",
                    "assert f(0)['b'] == set([4, 5])", "assert f(0) != {}",
                    "assert list(f(0).keys()) == ['a', 'b', 'c']"]),
    "dataclasses": ("from dataclasses import dataclass\n@dataclass\nclass Point:\n    x: int\n"
                    "    y: int\ndef mid(a, b):\n    return Point((a.x + b.x) // 2, (a.y + b.y) // 2)",
                    ["assert mid(Point(0, 0), Point(2, 4)) == Point(1, 2)",
                     "assert mid(Point(0, 0), Point(2, 4)) != Point(1, 3)",
                     "assert mid(Point(0, 0), Point(2, 4)).y == 2",
                     "assert isinstance(mid(Point(0, 0), Point(2, 2)), Point)",
                     "assert [mid(Point(0, 0), Point(2, 2))] == [Point(1, 1)]"]),
    "class_with_fair_eq": ("class Money:\n    def __init__(self, cents):\n"
                           "        self.cents = cents\n    def __eq__(self, o):\n"
                           "        return isinstance(o, Money) and o.cents == self.cents\n"
                           "    def __repr__(self):\n        return f'Money({self.cents})'\n"
                           "def total(xs):\n    return Money(sum(x.cents for x in xs))",
                           ["assert total([Money(1), Money(2)]) == Money(3)",
                            "assert not (total([Money(1)]) == Money(2))",
                            "assert str(total([Money(5)])) == 'Money(5)'"]),
    "generators_and_iterators": ("def gen(n):\n    yield from range(n)\n"
                                 "def pairs(n):\n    return zip(range(n), range(n))",
                                 ["assert list(gen(3)) == [0, 1, 2]",
                                  "assert sum(gen(5)) == 10",
                                  "assert list(pairs(2)) == [(0, 0), (1, 1)]",
                                  "assert sorted(gen(3), reverse=True) == [2, 1, 0]",
                                  "assert tuple(gen(2)) == (0, 1)"]),
    "recursion_and_stdlib": ("import functools, heapq, itertools, re, collections, math\n"
                             "@functools.lru_cache(None)\ndef fib(n):\n"
                             "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
                             "def top(xs, k):\n    return heapq.nlargest(k, xs)\n"
                             "def words(s):\n    return collections.Counter(re.findall(r'\\w+', s))\n"
                             "def perms(n):\n    return list(itertools.permutations(range(n)))",
                             ["assert fib(30) == 832040", "assert top([5, 1, 9, 3], 2) == [9, 5]",
                              "assert words('a b a') == {'a': 2, 'b': 1}",
                              "assert len(perms(4)) == 24", "assert math.gcd(fib(12), 12) == 12"]),
    "none_bool_and_identity": ("def find(xs, v):\n    return xs.index(v) if v in xs else None\n"
                               "def is_even(n):\n    return n % 2 == 0",
                               ["assert find([1, 2], 3) is None", "assert find([1, 2], 2) == 1",
                                "assert is_even(4) is True", "assert is_even(3) == False",
                                "assert not is_even(3)", "assert is_even(2)",
                                "assert isinstance(find([1], 1), int)",
                                "assert type(find([1], 1)) == int"]),
    "printing_and_tmp_files": ("import os, tempfile\ndef roundtrip(s):\n    print('working', s)\n"
                               "    path = os.path.join(tempfile.gettempdir(), 'x.txt')\n"
                               "    with open(path, 'w') as fh:\n        fh.write(s)\n"
                               "    with open(path) as fh:\n        return fh.read()",
                               ["assert roundtrip('hello') == 'hello'",
                                "assert roundtrip('') == ''"]),
    "namedtuple_enum_decimal_fraction": (
        "from collections import namedtuple, OrderedDict, deque\nfrom enum import Enum\n"
        "from fractions import Fraction\nfrom decimal import Decimal\nP = namedtuple('P', 'x y')\n"
        "class Color(Enum):\n    RED = 1\ndef p():\n    return P(1, 2)\ndef c():\n    return Color.RED\n"
        "def half():\n    return Fraction(1, 2)\ndef dec():\n    return Decimal('1.10')\n"
        "def od():\n    return OrderedDict(a=1)\ndef dq():\n    return deque([1, 2])",
        ["assert p() == (1, 2)", "assert p() == P(1, 2)", "assert p().x == 1",
         "assert c() == Color.RED", "assert c().value == 1", "assert half() == 0.5",
         "assert dec() == Decimal('1.1')", "assert od() == {'a': 1}",
         "assert list(dq()) == [1, 2]", "assert dq() == deque([1, 2])"]),
    "exceptions_expected_by_tests": (
        "def safe_div(a, b):\n    if b == 0:\n        raise ValueError('b is zero')\n    return a / b",
        ["try:\n    safe_div(1, 0)\nexcept ValueError:\n    pass\nelse:\n    assert False",
         "x = safe_div(6, 3)\nassert x == 2.0",
         "assert all(safe_div(i, 1) == i for i in range(5))"]),
    "bytes_complex_and_big_values": (
        "def f(n):\n    return bytes(range(min(n, 3))), complex(n, -n), list(range(n)), 7 ** n",
        ["assert f(3)[0] == b'\\x00\\x01\\x02'", "assert f(2)[1] == 2 - 2j",
         "assert f(100000)[2] == list(range(100000))", "assert f(5000)[3] == 7 ** 5000"]),
    "task_named_like_a_builtin": ("def sum(a, b):\n    return a + b\n"
                                  "def round(x):\n    return int(x + 0.5)",
                                  ["assert sum(1, 2) == 3", "assert round(2.5) == 3",
                                   "assert sum(sum(1, 1), 1) == 3",
                                   "assert abs(sum(0.1, 0.2) - 0.3) < 1e-9"]),
    "module_state_between_tests": ("calls = []\ndef f(x):\n    calls.append(x)\n    return len(calls)",
                                   ["assert f('a') == 1", "assert f('b') == 2"]),
    "expected_sides_computed_apart": ("def f(s):\n    return s.upper()",
                                      ["assert f('abc') == 'abc'.upper()",
                                       "assert list(f('ab')) == [c for c in 'AB']",
                                       "assert f('x') == ''.join(['X'])",
                                       "assert f('q') != 'q'.lower() * 2"]),
    "loops_and_check_functions": ("def f(x):\n    return x + 1", LOOP_SHAPES),
}


@pytest.mark.parametrize("name", sorted(HONEST))
def test_honest_program_passes(name: str, run: Callable[..., JobResult]) -> None:
    code, tests = HONEST[name]
    result = run(code, tests)
    assert result.status is RunStatus.OK, result
    failing = [(t, v) for t, v in zip(tests, result.tests, strict=True)
               if v.status is not TS.PASSED]
    assert failing == []
    assert result.pass_rate == 1.0 and result.passed == len(tests)


def test_wrong_answers_fail_with_the_right_status(run: Callable[..., JobResult]) -> None:
    code = "def f(x):\n    if x == 3:\n        raise KeyError('k')\n    return x * 2"
    result = run(code, ["assert f(1) == 2", "assert f(2) == 5", "assert f(3) == 6",
                        "assert g(1) == 2", "assert f(1) == 2 +", "assert f(1) < 'a'"])
    assert [t.status for t in result.tests] == [TS.PASSED, TS.FAILED, TS.ERROR, TS.ERROR,
                                                TS.ERROR, TS.ERROR]
    assert result.tests[2].error is not None and "KeyError" in result.tests[2].error
    assert result.tests[3].error is not None and "NameError" in result.tests[3].error
    assert result.passed == 1 and result.pass_rate == pytest.approx(1 / 6)


def test_wrong_answers_fail_every_loop_shape(run: Callable[..., JobResult]) -> None:
    shapes = [t for t in LOOP_SHAPES if "isinstance" not in t]  # which a wrong f passes too
    result = run("def f(x):\n    return x + 2", shapes)
    assert [t.status for t in result.tests] == [TS.FAILED] * len(shapes), result


def test_load_errors_give_zero(run: Callable[..., JobResult]) -> None:
    result = run("import not_a_module_xyz\ndef f():\n    return 1", ["assert f() == 1"])
    assert result.status is RunStatus.LOAD_ERROR and result.pass_rate == 0.0
    assert result.error is not None and "ModuleNotFoundError" in result.error
    assert [t.status for t in result.tests] == [TS.NOT_RUN]


def test_main_guard_does_not_run(run: Callable[..., JobResult]) -> None:
    code = "def f():\n    return 1\nif __name__ == '__main__':\n    print(f(int(input())))"
    assert run(code, ["assert f() == 1"]).passed == 1


@pytest.mark.skipif(importlib.util.find_spec("numpy") is None, reason="numpy not installed")
def test_numpy_programs(run: Callable[..., JobResult]) -> None:
    code = ("import numpy as np\ndef norm(v):\n    return float(np.linalg.norm(np.array(v)))\n"
            "def total(v):\n    return np.sum(v)\ndef arr(n):\n    return np.arange(n)")
    tests = ["assert abs(norm([3, 4]) - 5.0) < 1e-9", "assert total([1, 2, 3]) == 6",
             "assert arr(3).tolist() == [0, 1, 2]", "assert np.array_equal(arr(2), [0, 1])",
             "assert list(arr(2)) == [0, 1]"]
    result = run(code, tests, memory_mb=1024)
    assert [t.status for t in result.tests] == [TS.PASSED] * len(tests), result


SEMANTICS_CODE = """import math
def nan(): return float('nan')
def none(): return None
def tup(): return (1, 2)
def lst(): return [1, 2]
def one(): return 1
def zero(): return -0.0
def pt3(): return 0.1 + 0.2
def d(): return {'a': 1}
def empty(): return []
def t(): return True
def s(): return {1, 2}
def three(): return 3
def string(): return 'abc'
"""
# (assert, whether plain Python passes it): the trusted comparison must agree on each
SEMANTICS = [
    ("assert math.isnan(nan())", True), ("assert nan() != nan()", True),
    ("assert nan() == nan()", False), ("assert none() is None", True),
    ("assert tup() == [1, 2]", False), ("assert tup() == (1, 2)", True),
    ("assert isinstance(lst(), list)", True), ("assert isinstance(tup(), list)", False),
    ("assert sorted(tup()) == [1, 2]", True), ("assert one() != 2", True),
    ("assert one() in (1, 2)", True), ("assert abs(pt3() - 0.3) < 1e-9", True),
    ("assert not empty()", True), ("assert not lst()", False), ("assert d() == {'a': 1}", True),
    ("assert 0 < one() < 2", True), ("assert 0 < one() < 1", False),
    ("assert three() == 3, 'message'", True), ("assert three() == 4, 'message'", False),
    ("assert one() == 1.0", True), ("assert t() == 1", True), ("assert zero() == 0", True),
    ("assert math.copysign(1, zero()) == -1", True), ("assert str(zero()) == '-0.0'", True),
    ("assert s() == {2, 1}", True), ("assert type(tup()) is tuple", True),
    ("assert one() is True", False), ("assert t() is True", True),
    ("assert d() == {'a': True}", True), ("assert [tup()] == [[1, 2]]", False),
    ("assert tup() != [1, 2]", True), ("assert string()[::-1] == 'cba'", True),
    ("assert string() * 2 == 'abcabc'", True), ("assert [x * 2 for x in lst()] == [2, 4]", True),
    ("assert lst() == list(tup())", True), ("assert (1, 2) == tup()", True),
    ("assert max(lst()) == 2 and min(lst()) == 1", True), ("assert sum(lst()) == 3.0", True),
    ("assert round(pt3(), 1) == 0.3", True), ("assert divmod(7, three()) == (2, 1)", True),
]


def test_comparisons_keep_python_semantics(run: Callable[..., JobResult]) -> None:
    result = run(SEMANTICS_CODE, [t for t, _ in SEMANTICS])
    got = [(t, v.status is TS.PASSED) for (t, _), v in zip(SEMANTICS, result.tests, strict=True)]
    assert got == SEMANTICS

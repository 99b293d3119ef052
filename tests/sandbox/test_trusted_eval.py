"""Trusted evaluation of the whole assert: honest suites pass exactly, lying values gain nothing.

Real executor (real isolation where the host allows it), no mocks. The generated table over
every builtin and standard module is test_trusted_names.py; these are the shapes around it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import pytest

from sandbox_worker import compare, names
from sandbox_worker.protocol import JobResult
from sandbox_worker.protocol import TestStatus as TS

HONEST = '''
import math, re
from collections import Counter
from dataclasses import dataclass
@dataclass(order=True)
class P:
    x: int
class Bag:
    def __init__(self, n):
        self.n = n
    def __len__(self):
        return self.n
    def __repr__(self):
        return f"Bag({self.n})"
def f(x):
    return [x, x + 1]
def g(n):
    yield from range(n)
def pts():
    return [P(2), P(1)]
def sorted(xs):  # the task is to write `sorted`; tests call it on their own inputs
    out = list(xs)
    out.sort()
    return out
class V:  # operators of its own: only its methods can say what V(1) + V(2) is
    def __init__(self, x):
        self.x = x
    def __add__(self, o):
        return V(self.x + o.x)
    def __sub__(self, o):
        return V(self.x - o.x)
    def __neg__(self):
        return V(-self.x)
    def __lt__(self, o):
        return self.x < o.x
    def __abs__(self):
        return abs(self.x)
    def __mul__(self, k):  # a scalar: the test's own value reaches V's method, as in Python
        return V(self.x * k)
    __rmul__ = __mul__
    def __rsub__(self, k):
        return V(k - self.x)
class Solution:
    def twoSum(self, nums, target):
        seen = {}
        for i, v in enumerate(nums):
            if target - v in seen:
                return [seen[target - v], i]
            seen[v] = i
'''
HONEST_TESTS = [
    "assert sorted([3, 1, 2]) == [1, 2, 3]",
    "assert sorted(f(3)) == [3, 4]", "assert set(f(1)) == {1, 2}", "assert len(f(1)) == 2",
    "assert sum(f(1)) == 3", "assert math.isclose(f(1)[0] / 3, 1 / 3)",
    "assert all(f(x)[0] == x for x in range(5))", "assert any(v > 1 for v in f(1))",
    "assert [f(i)[1] for i in range(3)] == [1, 2, 3]", "assert sum(g(4)) == 6",
    "assert list(g(3)) == [0, 1, 2]", "assert Counter(f(1) + f(1)) == Counter({1: 2, 2: 2})",
    "assert re.fullmatch(r'\\d+', str(f(41)[1]))", "assert sorted(pts()) == [P(1), P(2)]",
    "assert min(pts()) == P(1)", "assert len(Bag(3)) == 3", "assert str(Bag(2)) == 'Bag(2)'",
    "assert isinstance(pts()[0], P)", "assert sorted(f(3), key=lambda v: -v) == [4, 3]",
    "assert Solution().twoSum([2, 7, 11, 15], 9) == [0, 1]",
    "assert max(f(x)[1] for x in range(4)) == 4",
    "import math\nx = f(2)\nassert math.isclose(sum(x), 5.0)",
    "i = 0\nwhile i < 2:\n    import math\n    assert math.isclose(f(i)[1], i + 1)\n    i += 1",
    "assert V(1) + V(2) == V(3)", "assert (V(1) + V(2) - V(4)).x == -1",
    "assert V(1) < V(2)", "assert not V(2) < V(1)", "assert -V(1) == V(-1)",
    "assert abs(V(3) - V(5)) == 2", "a = V(2)\nb = V(5)\nassert (b - a).x == 3",
    "assert f(1)[0] + f(2)[1] == 4",
    "assert V(2) * 3 == V(6)", "assert (3 * V(2)).x == 6", "assert (10 - V(4)).x == 6",
    "v = V(4)\nassert (v * 0.5).x == 2.0", "assert all((V(k) * 2).x == 2 * k for k in range(3))",
    "assert [(V(1) * k).x for k in [1, 2]] == [1, 2]", "assert -(V(1) * 2) == V(-2)",
]


def test_honest_suite_passes_exactly(run: Callable[..., JobResult]) -> None:
    result = run(HONEST, HONEST_TESTS)
    assert [t.status for t in result.tests] == [TS.PASSED] * len(HONEST_TESTS), result


@pytest.mark.skipif(importlib.util.find_spec("numpy") is None, reason="numpy not installed")
def test_numpy_in_tests(run: Callable[..., JobResult]) -> None:
    code = "import numpy as np\ndef f(n):\n    return np.arange(n) * 0.5\n"
    tests = ["assert np.allclose(f(3), [0, 0.5, 1.0])", "assert np.array_equal(f(2), [0, 0.5])",
             "assert len(f(4)) == 4", "assert np.allclose(f(3), [0, 0.5, 1.1]) is False"]
    result = run(code, tests, memory_mb=1024)
    assert [t.status for t in result.tests] == [TS.PASSED] * len(tests), result
    wrong = code.replace("* 0.5", "* 0.6")
    lying = wrong + "np.allclose = lambda *a, **k: True\nnp.array_equal = np.allclose\n"
    for program in (wrong, lying):
        result = run(program, tests[:2], memory_mb=1024)
        assert result.passed == 0, result


LIARS = {
    # a list whose __len__, __iter__ and __eq__ lie: reduced to its real items first
    "lying_list": "class L(list):\n    def __len__(self): return 3\n"
                  "    def __iter__(self): return iter([1, 2, 3])\n"
                  "    def __eq__(self, o): return True\n"
                  "def f(x):\n    return L([9])\n",
    # an always-equal object inside a comprehension judged in the clean child
    # (a class's own __len__ or __iter__ does decide len() or list() of it, as in Python:
    # that is the program's answer, not a forgery of the comparison)
    "always_equal": "class E:\n    def __eq__(self, o): return True\n    __hash__ = None\n"
                    "    def __bool__(self): return True\n"
                    "def f(x):\n    return E()\n",
    # it looks for the expected values in every frame it can reach: there are none
    "frame_reader": "import sys, gc\ndef f(x):\n    found = []\n    fr = sys._getframe()\n"
                    "    while fr is not None:\n        found += [v for k, v in fr.f_locals.items()"
                    " if k in ('y', 'expected')]\n        fr = fr.f_back\n"
                    "    return found[0] if found else [9]\n",
    "index_float": "class N:\n    def __index__(self): return 1\n    def __float__(self): return 2.0\n"
                   "    def __int__(self): return 2\n"
                   "def f(x):\n    return N()\n",
    # operators that answer anything: none may meet a test value (the expected answer)
    "operator_liar": "class O:\n    def __eq__(self, o): return True\n    __hash__ = None\n"
                     "    def _any(self, *a): return O()\n"
                     "    __add__ = __sub__ = __mul__ = __radd__ = __rsub__ = __neg__ = _any\n"
                     "    __abs__ = lambda self: 0\n    __lt__ = __gt__ = lambda self, o: True\n"
                     "def f(x):\n    return O()\n",
    # operators that answer a plain 0 after seeing the test's value: `f(1) - 5 == 0`
    "number_answers": "class A:\n    def _zero(self, *a): return 0\n"
                      "    __sub__ = __rsub__ = __mul__ = __rmul__ = __add__ = _zero\n"
                      "    real = x = 4\ndef f(x):\n    return A()\n",
    # a float whose operators lie: reduced to the float first, its operators take no part
    "float_liar": "class F(float):\n    def _any(self, *a): return 3.14\n"
                  "    __sub__ = __rsub__ = __mul__ = __rmul__ = __add__ = _any\n"
                  "    real = 4\ndef f(x):\n    return F(9.0)\n",
    "raising_repr": "class R:\n    def __repr__(self): raise RuntimeError('no')\n"
                    "    __str__ = __repr__\ndef f(x):\n    return R()\n",
}
LIAR_TESTS = [
    "assert len(f(1)) == 3", "assert sorted(f(1)) == [1, 2, 3]", "assert sum(f(1)) == 6",
    "assert all(f(x) == y for x, y in [(1, [1, 2, 3]), (2, [1, 2, 3])])",
    "assert [f(x) for x in [1]] == [[1, 2, 3]]", "assert f(1) == [1, 2, 3]",
    "assert list(f(1)) == [1, 2, 3]", "assert math.floor(f(1)) == 2",
    "assert [0, 2, 0][f(1)] == 2", "assert str(f(1)) == '[1, 2, 3]'",
    "expected = [1, 2, 3]\nassert f(1) == expected",
    "assert abs(f(1) - 3.14) < 1e-6", "assert f(1) - 5 == 0", "assert f(1) + 1 == [1, 2, 3]",
    "assert f(1) < 3", "assert 3 > f(1)", "assert -f(1) == -3", "assert f(1) + f(2) == 3",
    "assert abs(f(1) - f(2)) == 1",
    "assert (f(1) * 2).x == 4", "assert (2 * f(1)).real == 4", "assert f(1) * 2 == [1, 2, 3]",
    "assert [(f(1) * k).real for k in [1, 2]] == [4, 4]", "assert (f(1) - 3.14).real == 0",
]


@pytest.mark.parametrize("name", sorted(LIARS))
def test_lying_values_gain_no_pass(name: str, run: Callable[..., JobResult]) -> None:
    result = run(LIARS[name], LIAR_TESTS, timeout_s=3.0)
    passed = [t for t, v in zip(LIAR_TESTS, result.tests, strict=True) if v.status is TS.PASSED]
    assert passed == [], (passed, result)


def test_expected_values_in_comprehensions_stay_out_of_the_program() -> None:
    plan = compare.make_plan("assert all(f(x) == y for x, y in [(1, 'secret')])")
    skel = plan.steps[0][1]
    assert isinstance(skel, compare.Skeleton)
    assert [(h.src, h.params) for h in skel.holes] == [("f(x)", ("x",))]
    assert "secret" not in "".join(h.src for h in skel.holes)


def test_names_rule_reads_the_program_text() -> None:
    got = names.program_names("import numpy as np\nfrom collections import Counter\n"
                              "import math\nmath = 1\ndef sorted(x):\n    global sum\n"
                              "    sum = 2\nlen = 3\n")
    assert dict(got.imports) == {"np": "import numpy as np", "math": "import math",
                                 "Counter": "from collections import Counter"}
    assert got.shadowed == {"sorted", "sum", "len"}  # math is imported: the trusted one
    # a builtin the program defines is its own only on program-independent arguments
    own = compare.make_plan("assert sorted([2, 1]) == [1, 2]", got)
    assert isinstance(own.steps[0][1].args[0], compare.Hole)
    trusted = compare.make_plan("assert sorted(f(1)) == [1, 2]", got)
    assert trusted.steps[0][1].args[0].kind == "dispatch"

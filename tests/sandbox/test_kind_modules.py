"""`unittest` and `pytest` test modules (BigCodeBench, KodCode), in the real sandbox: each test
method / function is one verdict, judged without running unittest or pytest, so a program
that patches them, exits, or prints a report gains nothing."""

from __future__ import annotations

import pytest

from sandbox_worker.kinds import modules
from sandbox_worker.protocol import JobResult
from tests.sandbox.conftest import RunModule

GOOD = "def add(a, b):\n    return a + b\n"

PYTEST = '''
import pytest
from solution import add
import solution as sol

OFFSET = 0

def helper(x):
    return add(x, OFFSET)

def test_add():
    assert add(1, 2) == 3
    assert sol.add(0.1, 0.2) == pytest.approx(0.3)

@pytest.mark.parametrize("a, b, c", [(1, 1, 2), (2, 2, 4), (5, 5, 11)])
def test_param(a, b, c):
    assert add(a, b) == c

def test_raises():
    with pytest.raises(TypeError):
        add(None, 1)

def test_helper():
    assert helper(4) == 4

@pytest.mark.skip(reason="not counted")
def test_skipped():
    assert False
'''

UNITTEST = '''
import unittest

class TestCases(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = 10

    def setUp(self):
        self.data = [1, 2, 3]

    def check(self, a, b, want):
        self.assertEqual(add(a, b), want)

    def test_basic(self):
        self.assertEqual(add(1, 2), 3)
        self.assertIn(add(1, 1), self.data)
        self.assertIsInstance(add(1, 1), int)

    def test_helper_and_class_state(self):
        self.check(self.base, 1, 11)

    def test_raises(self):
        self.assertRaises(TypeError, add, None, 1)
        with self.assertRaises(TypeError):
            add("a", 1)

    def test_almost_and_count(self):
        self.assertAlmostEqual(add(0.1, 0.2), 0.3)
        self.assertCountEqual([add(1, 0), add(2, 0)], [2, 1])

    def test_wrong(self):
        self.assertEqual(add(2, 2), 5)

    def test_subtests(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertEqual(add(i, i), 2 * i)

if __name__ == "__main__":
    unittest.main()
'''


FIXTURES = '''
import pytest
from solution import add

LOG = []

@pytest.fixture
def pair():
    return (2, 3)

@pytest.fixture(name="expected")
def _expected(pair):
    return pair[0] + pair[1]

@pytest.fixture
def opened():
    LOG.append("open")
    yield len(LOG)
    LOG.append("closed")
    raise RuntimeError("teardown ran")

@pytest.fixture(autouse=True)
def offset():
    global OFFSET
    OFFSET = 100

@pytest.fixture(params=[1, 2])
def many(request):
    return request.param

def test_chain(pair, expected):
    assert add(*pair) == expected

def test_autouse():
    assert add(OFFSET, 1) == 101

@pytest.mark.parametrize("k", [1, 2])
def test_param_and_fixture(k, pair):
    assert add(k, pair[0]) == k + 2

def test_wrong_value(expected):
    assert add(1, 1) == expected

def test_yield_value(opened):
    assert LOG == ["open"] and opened == 1

def test_teardown_runs(opened):
    assert add(1, 1) == 2

def test_builtin_fixture(tmpdir):
    assert add(1, 1) == 2

def test_params_fixture(many):
    assert add(many, 0) == many
'''


def status_names(result: JobResult) -> list[str]:
    return [t.status.value for t in result.tests]


def test_conversion_names_and_counts() -> None:
    names = [n for n, _ in modules.convert("pytest", PYTEST)]
    assert names == ["test_add", "test_param[0]", "test_param[1]", "test_param[2]",
                     "test_raises", "test_helper"]  # skipped: not counted
    assert [n for n, _ in modules.convert("unittest", UNITTEST)] == [
        f"TestCases.{m}" for m in ("test_basic", "test_helper_and_class_state", "test_raises",
                                   "test_almost_and_count", "test_wrong", "test_subtests")]


def test_honest_pytest_module(run_module: RunModule) -> None:
    result = run_module(GOOD, "pytest", PYTEST)
    assert status_names(result) == ["passed", "passed", "passed", "failed", "passed", "passed"]


def test_honest_unittest_module(run_module: RunModule) -> None:
    result = run_module(GOOD, "unittest", UNITTEST)
    assert status_names(result) == ["passed"] * 4 + ["failed", "passed"]
    assert "4 == 5" in (result.tests[4].error or "")


def test_fixtures_and_unknown_decorators_error_clearly(run_module: RunModule) -> None:
    module = ("import pytest\nfrom solution import add\n\ndef test_fix(request):\n"
              "    assert add(1, 1) == 2\n\n@pytest.fixture\ndef thing():\n    return 1\n\n"
              "@pytest.mark.timeout(3)\ndef test_deco():\n    assert add(1, 1) == 2\n")
    result = run_module(GOOD, "pytest", module)
    assert status_names(result) == ["error", "error"]
    assert "fixtures (request)" in (result.tests[0].error or "")


def test_module_fixtures_are_bound_before_each_test(run_module: RunModule) -> None:
    names = [n for n, _ in modules.convert("pytest", FIXTURES)]
    assert names == ["test_chain", "test_autouse", "test_param_and_fixture[0]",
                     "test_param_and_fixture[1]", "test_wrong_value", "test_yield_value",
                     "test_teardown_runs", "test_builtin_fixture", "test_params_fixture"]
    result = run_module(GOOD, "pytest", FIXTURES)
    statuses = dict(zip(names, status_names(result), strict=True))
    assert {n for n, v in statuses.items() if v == "passed"} == {
        "test_chain", "test_autouse", "test_param_and_fixture[0]", "test_param_and_fixture[1]"}
    assert statuses["test_wrong_value"] == "failed"  # 2 == 5: the fixture's value was used
    # the code after the yield runs after the body: its RuntimeError fails both yield tests
    for name in ("test_yield_value", "test_teardown_runs"):
        assert statuses[name] != "passed"
        assert "teardown ran" in (result.tests[names.index(name)].error or ""), name
    errors = {n: t.error or "" for n, t in zip(names, result.tests, strict=True)}
    assert statuses["test_builtin_fixture"] == "error"
    assert "fixtures (tmpdir)" in errors["test_builtin_fixture"]
    assert statuses["test_params_fixture"] == "error"
    assert "parametrized fixture many" in errors["test_params_fixture"]


def test_fixture_cycles_and_async_fixtures_error_clearly(run_module: RunModule) -> None:
    module = ("import pytest\nfrom solution import add\n\n@pytest.fixture\ndef a(b):\n"
              "    return b\n\n@pytest.fixture\ndef b(a):\n    return a\n\n"
              "@pytest.fixture\nasync def c():\n    return await thing()\n\n"
              "@pytest.fixture(name='not-a-name')\ndef d():\n    return 1\n\n"
              "def test_cycle(a):\n    assert add(1, 1) == 2\n\n"
              "def test_async(c):\n    assert add(1, 1) == 2\n\n"
              "def test_plain():\n    assert add(1, 1) == 2\n")
    result = run_module(GOOD, "pytest", module)
    assert status_names(result) == ["error", "error", "passed"]  # a bad fixture spoils no other test
    assert "asks for itself" in (result.tests[0].error or "")
    assert "async fixture c" in (result.tests[1].error or "")


HOSTILE = {
    "patched unittest": "import unittest\nfor m in dir(unittest.TestCase):\n"
                        "    if m.startswith('assert'):\n"
                        "        setattr(unittest.TestCase, m, lambda *a, **k: None)\n"
                        "def add(a, b):\n    return 0\n",
    "fake pytest module": "import sys, types\nfake = types.ModuleType('pytest')\n"
                          "fake.approx = lambda x, **k: type('A', (), {'__eq__': lambda s, o: True})()\n"
                          "fake.raises = lambda *a: __import__('contextlib').suppress(BaseException)\n"
                          "sys.modules['pytest'] = fake\ndef add(a, b):\n    return 0\n",
    "patched math.isclose": "import math\nmath.isclose = lambda *a, **k: True\n"
                            "def add(a, b):\n    return 0\n",
    "always equal": "class E:\n    def __eq__(self, o): return True\n    def __ne__(self, o): "
                    "return False\n    def __contains__(self, o): return True\n"
                    "def add(a, b):\n    return E()\n",
    "exit in the test": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "hard exit": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "report on stdout": "import atexit\nprint('OK')\nprint('Ran 6 tests in 0.001s\\n\\nOK')\n"
                        "atexit.register(lambda: print('6 passed'))\n"
                        "def add(a, b):\n    print('PASSED')\n    return None\n",
    "own fixture functions": "class E:\n    def __eq__(self, o): return True\n"
                             "def __fixture_pair(): return E()\n"
                             "def __fixture_expected(pair): return E()\n"
                             "def add(a, b):\n    return 0\n",
    "patched next": "import builtins\nclass E:\n    def __eq__(self, o): return True\n"
                    "    def __getitem__(self, i): return 0\n"
                    "builtins.next = lambda *a: E()\ndef add(a, b):\n    return E()\n",
    "fake capture": "import io, sys\nclass Buf(io.TextIOWrapper):\n"
                    "    def getvalue(self): return ''\n"
                    "io.TextIOWrapper = Buf\nsys.stdout = Buf(io.BytesIO())\n"
                    "def greet(name): pass\ndef add(a, b):\n    return 0\n",
    "patched mock": "import unittest.mock as m\nclass E:\n    def __eq__(self, o): return True\n"
                    "    def __getattr__(self, n): return lambda *a, **k: E()\n"
                    "class P:\n    def __init__(self, *a, **k): pass\n"
                    "    def start(self): return E()\n    def stop(self): pass\n"
                    "m.patch = P\nm.patch.object = P\nm._patch.start = lambda s: E()\n"
                    "def add(a, b):\n    return E()\n",
    "patched mock asserts": "import unittest.mock as m\nfor name in dir(m.NonCallableMock):\n"
                            "    if name.startswith('assert_'):\n"
                            "        setattr(m.NonCallableMock, name, lambda *a, **k: None)\n"
                            "def greet(name): pass\ndef add_two_numbers(): pass\n"
                            "def add(a, b):\n    return 0\n",
    "fake warnings": "import warnings, contextlib\nclass W:\n    category = DeprecationWarning\n"
                     "    message = 'use new()'\n@contextlib.contextmanager\n"
                     "def fake(*a, **k):\n    yield [W()]\nwarnings.catch_warnings = fake\n"
                     "def old(x):\n    return x + 1\ndef add(a, b):\n    return 0\n",
    "patched builtins": "import builtins\nbuiltins.AssertionError = type('N', (Exception,), {})\n"
                        "builtins.isinstance = lambda *a: True\ndef add(a, b):\n    return 0\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_programs_pass_nothing(run_module: RunModule, name: str) -> None:
    for kind, module in (("pytest", PYTEST), ("unittest", UNITTEST), ("pytest", FIXTURES)):
        result = run_module(HOSTILE[name], kind, module, timeout_s=3.0)
        passed = [t for t, v in zip(modules.convert(kind, module), result.tests, strict=True)
                  if v.status.value == "passed"]
        assert passed == [], (name, kind, passed)

"""`unittest` and `pytest` test modules (BigCodeBench, KodCode), in the real sandbox: each test
method / function is one verdict, judged without running unittest or pytest, so a program
that patches them, exits, or prints a report gains nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sandbox_worker.executor import Executor
from sandbox_worker.kinds import modules
from sandbox_worker.protocol import Job, JobResult, ModuleTests

RunModule = Callable[..., JobResult]

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


@pytest.fixture
def run_module(executor: Executor) -> RunModule:
    def _run(code: str, kind: str, module: str, timeout_s: float = 10.0) -> JobResult:
        job = Job(code=code, tests=ModuleTests(kind=kind, module=module),  # type: ignore[arg-type]
                  timeout_s=timeout_s, memory_mb=512)
        result = executor.run(job)
        assert executor.healthy()
        assert result.total == job.n_tests()
        return result
    return _run


def _statuses(result: JobResult) -> list[str]:
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
    assert _statuses(result) == ["passed", "passed", "passed", "failed", "passed", "passed"]


def test_honest_unittest_module(run_module: RunModule) -> None:
    result = run_module(GOOD, "unittest", UNITTEST)
    assert _statuses(result) == ["passed"] * 4 + ["failed", "passed"]
    assert "4 == 5" in (result.tests[4].error or "")


def test_fixtures_and_unknown_decorators_error_clearly(run_module: RunModule) -> None:
    module = ("import pytest\nfrom solution import add\n\ndef test_fix(request):\n"
              "    assert add(1, 1) == 2\n\n@pytest.fixture\ndef thing():\n    return 1\n\n"
              "@pytest.mark.timeout(3)\ndef test_deco():\n    assert add(1, 1) == 2\n")
    result = run_module(GOOD, "pytest", module)
    assert _statuses(result) == ["error", "error"]
    assert "fixtures (request)" in (result.tests[0].error or "")


def test_module_fixtures_are_bound_before_each_test(run_module: RunModule) -> None:
    names = [n for n, _ in modules.convert("pytest", FIXTURES)]
    assert names == ["test_chain", "test_autouse", "test_param_and_fixture[0]",
                     "test_param_and_fixture[1]", "test_wrong_value", "test_yield_value",
                     "test_teardown_runs", "test_builtin_fixture", "test_params_fixture"]
    result = run_module(GOOD, "pytest", FIXTURES)
    statuses = dict(zip(names, _statuses(result), strict=True))
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
    assert _statuses(result) == ["error", "error", "passed"]  # a bad fixture spoils no other test
    assert "asks for itself" in (result.tests[0].error or "")
    assert "async fixture c" in (result.tests[1].error or "")


PRINTS = '''
import logging
import os
import sys

def log_work(n):
    logging.getLogger("work").info("did %d", n)
    logging.warning("careful")

def greet(name):
    print(f"Hello, {name}!")

def warn(msg):
    print(msg, file=sys.stderr)

def shout(text):
    os.write(1, text.upper().encode() + b"\\n")

def add_two_numbers():
    a = int(input())
    b = int(input())
    print(a + b)

def save(path, text):
    with open(path, "w") as f:
        f.write(text)

def api_key():
    return os.environ.get("API_KEY", "")

def helper(x):
    return x

def double_helper(x):
    return helper(x) * 2
'''

# the same functions, each a little wrong
PRINTS_WRONG = (PRINTS.replace('f"Hello, {name}!"', 'f"Hello {name}"')
                .replace("file=sys.stderr", "file=sys.stdout")
                .replace("text.upper()", "text").replace("a + b", "a - b")
                .replace("f.write(text)", "f.write(text[::-1])")
                .replace('"API_KEY", ""', '"API-KEY", ""').replace("* 2", "* 3")
                .replace('"did %d", n', '"did %d", n + 1'))

BUILTIN_FIXTURES = '''
import io
import logging
import sys
import pytest
import solution
from solution import add_two_numbers, api_key, double_helper, greet, log_work, save, shout, warn

def test_capsys_out(capsys):
    greet("Bob")
    captured = capsys.readouterr()
    assert captured.out == "Hello, Bob!\\n"
    assert captured.err == ""

def test_capsys_err_then_cleared(capsys):
    warn("careful")
    out, err = capsys.readouterr()
    assert (out, err) == ("", "careful\\n")
    greet("A")
    assert capsys.readouterr().out == "Hello, A!\\n"

def test_capfd_sees_os_write_in_order(capfd):
    greet("fd")
    shout("raw")
    assert capfd.readouterr().out == "Hello, fd!\\nRAW\\n"

def test_input(monkeypatch, capsys):
    answers = iter(["3", "4"])
    monkeypatch.setattr("builtins.input", lambda *a: next(answers))
    add_two_numbers()
    assert capsys.readouterr().out.strip() == "7"

def test_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("10\\n5\\n"))
    add_two_numbers()
    assert capsys.readouterr().out == "15\\n"

def test_fails_with_patches_in_place(monkeypatch):
    monkeypatch.setattr("builtins.input", lambda *a: "1")
    monkeypatch.setenv("API_KEY", "leaked")
    assert api_key() == "nope"

def test_nothing_leaks_from_the_failed_test():
    assert api_key() == ""
    with pytest.raises(EOFError):
        add_two_numbers()

def test_tmp_path(tmp_path):
    target = tmp_path / "out.txt"
    save(str(target), "hi")
    assert target.read_text() == "hi"

def test_env(monkeypatch):
    monkeypatch.setenv("API_KEY", "k-1")
    assert api_key() == "k-1"

def test_patch_program(monkeypatch):
    monkeypatch.setattr(solution, "helper", lambda x: 10)
    assert double_helper(1) == 20
    assert solution.helper(1) == 10

def test_patch_program_by_path(monkeypatch):
    monkeypatch.setattr("solution.helper", lambda x: 5)
    assert double_helper(1) == 10

def test_program_patch_undone():
    assert double_helper(1) == 2

@pytest.fixture
def shown(capsys):
    def read():
        return capsys.readouterr().out.strip()
    return read

def test_own_fixture_over_capsys(shown):
    greet("C")
    assert shown() == "Hello, C!"

def test_caplog(caplog):
    with caplog.at_level(logging.INFO):
        log_work(3)
    assert "did 3" in caplog.text
    assert caplog.record_tuples[0] == ("work", 20, "did 3")
    assert caplog.messages == ["did 3", "careful"]

def test_caplog_set_level_is_undone(caplog):
    log_work(4)
    assert caplog.messages == ["careful"]

def test_unsupported_builtin(request):
    assert 1 == 1
'''


def test_pytest_builtin_fixtures(run_module: RunModule) -> None:
    names = [n for n, _ in modules.convert("pytest", BUILTIN_FIXTURES)]
    result = run_module(PRINTS, "pytest", BUILTIN_FIXTURES)
    statuses = dict(zip(names, _statuses(result), strict=True))
    odd = {"test_fails_with_patches_in_place": "failed", "test_unsupported_builtin": "error"}
    assert statuses == {n: odd.get(n, "passed") for n in names}, result.tests
    error = result.tests[names.index("test_unsupported_builtin")].error or ""
    assert "fixtures (request)" in error and "capsys, capfd, caplog, tmp_path, monkeypatch" in error
    # each wrong function fails the tests that check it; the untouched ones still pass
    wrong = dict(zip(names, _statuses(run_module(PRINTS_WRONG, "pytest", BUILTIN_FIXTURES)),
                     strict=True))
    assert {n for n, v in wrong.items() if v == "passed"} == {
        "test_nothing_leaks_from_the_failed_test", "test_caplog_set_level_is_undone"}, wrong


def test_builtin_fixtures_only_when_asked() -> None:
    plain = dict(modules.convert("pytest", PYTEST))
    assert not any("__fixture_reset" in src for src in plain.values())
    # a module fixture named like a builtin replaces it
    own = "import pytest\n@pytest.fixture\ndef capsys():\n    return 1\n" \
          "def test_a(capsys):\n    assert capsys == 1\n"
    (_, src), = modules.convert("pytest", own)
    assert "__fixture_reset" not in src and "capsys = __fixture_capsys()" in src


MOCKS = '''
import io
import sys
import unittest
from unittest import mock
from unittest.mock import MagicMock, call, patch
import solution
from solution import add_two_numbers, double_helper, greet

def test_mock_asserts():
    with patch("builtins.print") as fake_print:
        greet("E")
    fake_print.assert_called_once_with("Hello, E!")
    fake_print.assert_any_call("Hello, E!")

def test_mock_call_list():
    fake = MagicMock(side_effect=["1", "2"])
    with patch("builtins.input", fake), patch("sys.stdout", new_callable=io.StringIO) as out:
        add_two_numbers()
    fake.assert_has_calls([call(), call()])
    fake.assert_called()
    assert out.getvalue() == "3\\n"

def test_with_patch():
    with patch("builtins.input", side_effect=["3", "4"]):
        with patch("sys.stdout", new_callable=io.StringIO) as out:
            add_two_numbers()
    assert out.getvalue() == "7\\n"

def test_assert_inside_with():
    with patch("builtins.input", side_effect=["3", "4"]), \\
            mock.patch("sys.stdout", new_callable=io.StringIO) as out:
        add_two_numbers()
        assert out.getvalue() == "7\\n"

@patch("builtins.input", side_effect=["1", "1"])
@patch("sys.stdout", new_callable=io.StringIO)
def test_decorators(out, fake_input):
    add_two_numbers()
    assert out.getvalue() == "2\\n"
    assert fake_input.call_count == 2

@patch.object(solution, "helper", return_value=7)
def test_patch_object(helper_mock, capsys):
    assert double_helper(0) == 14
    greet("D")
    assert capsys.readouterr().out == "Hello, D!\\n"

def test_patch_is_stopped():
    assert double_helper(4) == 8

class TestMocks(unittest.TestCase):
    @patch("builtins.input", side_effect=["2", "5"])
    def test_method(self, fake_input):
        with patch("sys.stdout", new_callable=io.StringIO) as out:
            add_two_numbers()
        self.assertEqual(out.getvalue(), "7\\n")

    @patch("solution.helper", new=lambda x: 1)
    def test_new_takes_no_argument(self):
        self.assertEqual(double_helper(9), 2)
'''


def test_mock_patch_in_pytest_and_unittest_modules(run_module: RunModule) -> None:
    for kind in ("pytest", "unittest"):
        names = [n for n, _ in modules.convert(kind, MOCKS)]
        assert names and all("raise RuntimeError" not in s for _, s in
                             modules.convert(kind, MOCKS))
        assert _statuses(run_module(PRINTS, kind, MOCKS)) == ["passed"] * len(names), kind
        wrong = _statuses(run_module(PRINTS_WRONG, kind, MOCKS))
        assert wrong == ["failed"] * len(names), (kind, wrong)
    # the asserts inside `with patch(...)` stay top-level: judged here, not in the child
    src = dict(modules.convert("pytest", MOCKS))["test_assert_inside_with"]
    assert "\nassert out.getvalue() == '7\\n'" in src and "with " not in src


RAISES = '''
import unittest
import pytest
from solution import parse

def test_match():
    with pytest.raises(ValueError, match=r"negative: -\\d"):
        parse(-1)

def test_excinfo():
    with pytest.raises(ValueError) as excinfo:
        parse(-2)
    assert str(excinfo.value) == "negative: -2"

class TestRaises(unittest.TestCase):
    def test_regex_context(self):
        with self.assertRaisesRegex(ValueError, "negative"):
            parse(-3)

    def test_regex_call(self):
        self.assertRaisesRegex(ValueError, "^negative", parse, -4)

    def test_cm_exception(self):
        with self.assertRaises(ValueError) as cm:
            parse(-5)
        self.assertIn("-5", str(cm.exception))
'''
PARSE = "def parse(x):\n    if x < 0:\n        raise ValueError(f'negative: {x}')\n    return x\n"


def test_raises_checks_read_the_message(run_module: RunModule) -> None:
    # match= / assertRaisesRegex patterns are checked (before, any message passed), and
    # `as excinfo` / `as cm` give the exception, judged trusted-side like any value
    wrong = PARSE.replace("negative: {x}", "bad value")
    for kind in ("pytest", "unittest"):
        n = len(modules.convert(kind, RAISES))
        assert _statuses(run_module(PARSE, kind, RAISES)) == ["passed"] * n, kind
        assert _statuses(run_module(wrong, kind, RAISES)) == ["failed"] * n, kind


WARNS_APPROX = '''
import unittest
import pytest
from solution import halves, old

def test_warns():
    with pytest.warns(DeprecationWarning, match="use new"):
        assert old(1) == 2

def test_warns_record():
    with pytest.warns(DeprecationWarning) as record:
        old(1)
    assert len(record) == 1

def test_approx_list():
    assert halves(3) == pytest.approx([0.5, 1.0, 1.5])

def test_approx_tuple_rel():
    assert tuple(halves(2)) == pytest.approx((0.5, 1.0001), rel=1e-3)

class TestWarns(unittest.TestCase):
    def test_assert_warns(self):
        with self.assertWarns(DeprecationWarning):
            old(2)

    def test_assert_warns_regex(self):
        with self.assertWarnsRegex(DeprecationWarning, "new"):
            old(3)
'''
WARNS = ("import warnings\ndef old(x):\n    warnings.warn('use new()', DeprecationWarning)\n"
         "    return x + 1\ndef halves(n):\n    return [i * 0.5 for i in range(1, n + 1)]\n")


def test_warns_checks_and_approx_of_sequences(run_module: RunModule) -> None:
    # before: a warns check was run as a raises check (an honest warning failed it) and
    # pytest.approx of a list was math.isclose of two lists (an error for every program)
    wrong = WARNS.replace("DeprecationWarning", "UserWarning").replace("i * 0.5", "i * 0.6")
    for kind in ("pytest", "unittest"):
        n = len(modules.convert(kind, WARNS_APPROX))
        assert _statuses(run_module(WARNS, kind, WARNS_APPROX)) == ["passed"] * n, kind
        assert _statuses(run_module(wrong, kind, WARNS_APPROX)) == ["failed"] * n, kind
    longer = WARNS.replace("range(1, n + 1)", "range(1, n + 2)")
    assert "passed" not in _statuses(run_module(longer, "pytest", WARNS_APPROX))[2:]


PARAMS = '''
import unittest
import pytest
from solution import add

CASES = [(1, 2, 3), (2, 2, 4), pytest.param(5, 5, 10, id="fives")]
SKIPPED = [pytest.param(1, 1, marks=pytest.mark.skip), 2]

@pytest.mark.parametrize("a, b, c", CASES)
def test_cases(a, b, c):
    assert add(a, b) == c

@pytest.mark.parametrize("x", SKIPPED)
def test_skipped_param(x):
    assert add(x, 0) == x

def closing(log):
    raise RuntimeError("cleanup ran after " + ",".join(log))

class TestCleanup(unittest.TestCase):
    def setUp(self):
        self.log = []
        self.addCleanup(self.log.append, "quiet")

    def test_one(self):
        self.assertEqual(add(1, 1), 2)

    def test_cleanup_runs_after_the_body(self):
        self.addCleanup(closing, self.log)
        self.log.append("body")
        self.assertEqual(add(2, 2), 4)
'''


def test_parametrize_from_module_names_and_cleanups(run_module: RunModule) -> None:
    # before: a parametrize naming a module-level list, pytest.param and addCleanup all
    # made their tests error for every program
    names = [n for n, _ in modules.convert("pytest", PARAMS)]
    assert names == ["test_cases[0]", "test_cases[1]", "test_cases[2]", "test_skipped_param"]
    assert _statuses(run_module(GOOD, "pytest", PARAMS)) == ["passed"] * 4
    assert _statuses(run_module(GOOD.replace("a + b", "a * b"), "pytest", PARAMS)) == [
        "failed", "passed", "failed", "failed"]  # 2 * 2 == 2 + 2
    result = run_module(GOOD, "unittest", PARAMS)
    assert _statuses(result) == ["passed", "error"]  # the second test's cleanup raises
    assert "cleanup ran after body" in (result.tests[1].error or "")


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
    for kind, module in (("pytest", PYTEST), ("unittest", UNITTEST), ("pytest", FIXTURES),
                         ("pytest", BUILTIN_FIXTURES), ("pytest", MOCKS), ("unittest", MOCKS),
                         ("pytest", WARNS_APPROX)):
        result = run_module(HOSTILE[name], kind, module, timeout_s=3.0)
        passed = [t for t, v in zip(modules.convert(kind, module), result.tests, strict=True)
                  if v.status.value == "passed"]
        assert passed == [], (name, kind, passed)

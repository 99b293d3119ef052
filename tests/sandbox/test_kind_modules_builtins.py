"""pytest's own fixtures, unittest.mock patches, raises / warns checks, approx of sequences,
parametrize from module names and cleanups in test modules (kinds/pytest_builtins.py,
capture_fixtures.py, patches.py, rewrite.py), in the real sandbox: honest programs pass,
wrong ones fail, hostile ones pass nothing."""

from __future__ import annotations

import pytest

from sandbox_worker.kinds import modules
from tests.sandbox.conftest import RunModule
from tests.sandbox.test_kind_modules import GOOD, HOSTILE, PYTEST, status_names

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
    statuses = dict(zip(names, status_names(result), strict=True))
    odd = {"test_fails_with_patches_in_place": "failed", "test_unsupported_builtin": "error"}
    assert statuses == {n: odd.get(n, "passed") for n in names}, result.tests
    error = result.tests[names.index("test_unsupported_builtin")].error or ""
    assert "fixtures (request)" in error and "capsys, capfd, caplog, tmp_path, monkeypatch" in error
    # each wrong function fails the tests that check it; the untouched ones still pass
    wrong = dict(zip(names, status_names(run_module(PRINTS_WRONG, "pytest", BUILTIN_FIXTURES)),
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
        assert status_names(run_module(PRINTS, kind, MOCKS)) == ["passed"] * len(names), kind
        wrong = status_names(run_module(PRINTS_WRONG, kind, MOCKS))
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
        assert status_names(run_module(PARSE, kind, RAISES)) == ["passed"] * n, kind
        assert status_names(run_module(wrong, kind, RAISES)) == ["failed"] * n, kind


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
        assert status_names(run_module(WARNS, kind, WARNS_APPROX)) == ["passed"] * n, kind
        assert status_names(run_module(wrong, kind, WARNS_APPROX)) == ["failed"] * n, kind
    longer = WARNS.replace("range(1, n + 1)", "range(1, n + 2)")
    assert "passed" not in status_names(run_module(longer, "pytest", WARNS_APPROX))[2:]


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
    assert status_names(run_module(GOOD, "pytest", PARAMS)) == ["passed"] * 4
    assert status_names(run_module(GOOD.replace("a + b", "a * b"), "pytest", PARAMS)) == [
        "failed", "passed", "failed", "failed"]  # 2 * 2 == 2 + 2
    result = run_module(GOOD, "unittest", PARAMS)
    assert status_names(result) == ["passed", "error"]  # the second test's cleanup raises
    assert "cleanup ran after body" in (result.tests[1].error or "")


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_programs_pass_nothing(run_module: RunModule, name: str) -> None:
    for kind, module in (("pytest", BUILTIN_FIXTURES), ("pytest", MOCKS), ("unittest", MOCKS),
                         ("pytest", WARNS_APPROX)):
        result = run_module(HOSTILE[name], kind, module, timeout_s=3.0)
        passed = [t for t, v in zip(modules.convert(kind, module), result.tests, strict=True)
                  if v.status.value == "passed"]
        assert passed == [], (name, kind, passed)

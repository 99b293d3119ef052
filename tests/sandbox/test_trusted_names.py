"""What a test may trust (README): generated over every builtin and every standard module.

For each public builtin and each standard module this host can import, a hostile program
replaces it everywhere a program can (the `builtins` module, its own globals, its
`__builtins__`; for modules `sys.modules`, the real module's attribute in place, and its
globals) with an always-equal, always-true liar. Its `f` is wrong. Asserts that use that
builtin or module, in each shape the planner handles (top-level, a comprehension judged in a
clean child, after set-up statements), must not pass where the same wrong program without
the patches fails. Real executor, real isolation where the host allows it.
"""

from __future__ import annotations

import builtins
import importlib
import sys
import warnings
from collections.abc import Callable

import pytest

from sandbox_worker.protocol import JobResult
from sandbox_worker.protocol import TestStatus as TS

LIAR = """
import builtins, sys, types
class _Liar:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return False
    def __hash__(self): return 0
    def __call__(self, *a, **k): return self
    def __getattr__(self, name): return self
    def __bool__(self): return True
    def __len__(self): return 0
    def __iter__(self): return iter(())
    def __float__(self): return 2.0
    def __index__(self): return 2
    def __repr__(self): return '2'
liar = _Liar()
class _LiarModule(types.ModuleType):
    def __getattr__(self, name): return liar
"""
WRONG = "def f(x):\n    return -7\n"

BUILTINS = sorted(n for n in dir(builtins) if not n.startswith("_")
                  and callable(getattr(builtins, n)))
# modules whose import has effects on this (the test) process, or that no test calls
_NOT_MODULES = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "pydoc_data",
                "lib2to3", "ensurepip", "venv", "test"}


def _first_callable(name: str) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            module = importlib.import_module(name)
        except Exception:
            return None
    attrs = sorted(a for a in dir(module) if not a.startswith("_")
                   and callable(getattr(module, a, None)))
    return attrs[0] if attrs else None


MODULES = [(m, a) for m in sorted(sys.stdlib_module_names)
           if not m.startswith("_") and m not in _NOT_MODULES
           for a in [_first_callable(m)] if a is not None]


def _patch_builtin(name: str) -> str:
    return (LIAR + f"_b = dict(vars(builtins))\n_b[{name!r}] = liar\n"
            f"globals()['__builtins__'] = _b\n{name} = liar\n"
            f"builtins.__dict__[{name!r}] = liar\n" + WRONG)


def _patch_module(name: str, attr: str) -> str:
    return (f"import {name}\n" + LIAR + f"try:\n    setattr({name}, {attr!r}, liar)\n"
            "except Exception:\n    pass\n"
            f"sys.modules[{name!r}] = _LiarModule({name!r})\n{name} = liar\n" + WRONG)


def _shapes(call: str) -> list[str]:
    """The same failing comparison in each shape: `call` is a format with one `{}`."""
    return [f"assert {call.format('f(1)')} == {call.format('2')}",
            f"assert all({call.format('v')} == {call.format('2')} for v in [f(1)])",
            f"x = f(1)\nassert {call.format('x')} == {call.format('2')}"]


def _no_gain(hostile: JobResult, control: JobResult) -> None:
    assert len(hostile.tests) == len(control.tests)
    for mine, base in zip(hostile.tests, control.tests, strict=True):
        if mine.status is TS.PASSED:
            assert base.status is TS.PASSED, (hostile, control)


@pytest.mark.parametrize("name", BUILTINS)
def test_patched_builtin_gains_no_pass(name: str, run: Callable[..., JobResult]) -> None:
    tests = _shapes(name + "({})")
    hostile = run(_patch_builtin(name), tests, timeout_s=3.0)
    control = run(WRONG, tests, timeout_s=3.0)
    _no_gain(hostile, control)
    assert hostile.passed <= control.passed


@pytest.mark.parametrize(("name", "attr"), MODULES, ids=[m for m, _ in MODULES])
def test_patched_module_gains_no_pass(name: str, attr: str,
                                      run: Callable[..., JobResult]) -> None:
    call = f"{name}.{attr}({{}})"
    tests = [*_shapes(call), f"import {name}\n" + _shapes(call)[2]]
    hostile = run(_patch_module(name, attr), tests, timeout_s=3.0)
    control = run(f"import {name}\n" + WRONG, tests, timeout_s=3.0)
    _no_gain(hostile, control)


def test_tables_are_generated_not_hand_picked() -> None:
    assert len(BUILTINS) > 100 and {"sorted", "all", "sum", "isinstance"} <= set(BUILTINS)
    names = {m for m, _ in MODULES}
    assert len(names) > 100 and {"math", "re", "collections", "itertools"} <= names

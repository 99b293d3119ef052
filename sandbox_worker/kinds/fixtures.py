"""pytest fixtures of a test module, bound by plain calls before each test that asks for them.

Nothing of pytest runs (modules.py), so a module-level `@pytest.fixture` / `@fixture` function
is kept in the test's set-up lines under another name, undecorated, and each test that asks for
it (or every test, for `autouse=True`) gets `name = <fixture>(its own fixtures...)` before its
body, dependencies first. A `yield` fixture's value is its first yield; the code after it runs
after the test's body, in reverse order, as unittest's tearDown does here. `name=` renames a
fixture; `scope=` changes nothing, since every test runs on its own. pytest's own capsys,
capfd, caplog, tmp_path and monkeypatch are pytest_builtins.py's. Not supported (the test
errors, saying why): pytest's other built-in fixtures (tmpdir, request, ...), fixtures of a
conftest.py, `params=`, async fixtures, and fixtures that ask for themselves.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PREFIX = "__fixture_"
# pytest's own fixtures that pytest_builtins.py writes out
SUPPORTED = ("capsys", "capfd", "caplog", "tmp_path", "monkeypatch")


class Unsupported(ValueError):
    """A construct the conversion does not handle (the test errors with this message)."""


@dataclass(frozen=True)
class Fixture:
    name: str  # what tests ask for
    func: str  # the undecorated function in the set-up lines
    args: tuple[str, ...]  # the fixtures it asks for itself
    generator: bool  # a yield fixture: set-up, value, tear-down
    autouse: bool
    unsupported: str = ""  # why a test asking for it errors


def _decorator(stmt: ast.stmt) -> ast.expr | None:
    if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    for dec in stmt.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if ast.unparse(target) in ("pytest.fixture", "fixture"):
            return dec
    return None


def _yields(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    todo: list[ast.AST] = list(fn.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Yield | ast.YieldFrom):
            return True
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda |
                          ast.ClassDef):
            todo.extend(ast.iter_child_nodes(node))
    return False


def extract(stmt: ast.stmt) -> tuple[ast.stmt, Fixture] | None:
    """A fixture definition's undecorated, renamed function and its description; None for
    any other statement."""
    dec = _decorator(stmt)
    if dec is None:
        return None
    assert isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef)
    keywords = {k.arg: k.value for k in dec.keywords} if isinstance(dec, ast.Call) else {}
    name = stmt.name
    given = keywords.get("name")
    if isinstance(given, ast.Constant) and isinstance(given.value, str):
        name = given.value
    flag = keywords.get("autouse")
    autouse = isinstance(flag, ast.Constant) and bool(flag.value)
    why = ""
    if not name.isidentifier():
        why = f"fixture name {name!r}"
    elif isinstance(stmt, ast.AsyncFunctionDef):
        why = f"async fixture {name}"
    elif "params" in keywords:
        why = f"parametrized fixture {name} (params=)"
    n_defaults = len(stmt.args.defaults)
    args = tuple(a.arg for a in stmt.args.args[:len(stmt.args.args) - n_defaults])
    spec = Fixture(name=name, func=PREFIX + stmt.name, args=args, generator=_yields(stmt),
                   autouse=autouse, unsupported=why)
    if why:  # not kept at all: an async body (await) would not even compile in a plain def
        return ast.Pass(), spec
    func = copy.copy(stmt)
    func.name, func.decorator_list = spec.func, []
    return func, spec


def bind(wanted: Sequence[str], fixtures: Mapping[str, Fixture], bound: set[str]
         ) -> tuple[list[ast.stmt], list[ast.stmt]]:
    """(set-up, tear-down) statements that give a test the fixtures it asks for (`wanted`)
    and the module's autouse fixtures; names in `bound` (parametrize) are not fixtures."""
    order: list[Fixture] = []
    unknown: list[str] = []
    state: dict[str, int] = {}  # 1: being resolved, 2: done

    def visit(name: str) -> None:
        if name in bound or state.get(name) == 2:
            return
        fx = fixtures.get(name)
        if fx is None:
            if name not in unknown:
                unknown.append(name)
            return
        if state.get(name) == 1:
            raise Unsupported(f"pytest fixture {name} asks for itself")
        if fx.unsupported:
            raise Unsupported(f"pytest {fx.unsupported} is not supported")
        state[name] = 1
        for dep in fx.args:
            visit(dep)
        state[name] = 2
        order.append(fx)

    for name in [*(f.name for f in fixtures.values() if f.autouse), *wanted]:
        visit(name)
    if unknown:
        raise Unsupported(f"pytest fixtures ({', '.join(unknown)}) are not supported: only "
                          f"fixtures the test module defines and {', '.join(SUPPORTED)} are")
    setup: list[ast.stmt] = []
    teardown: list[ast.stmt] = []
    for fx in order:
        call = ast.Call(func=ast.Name(id=fx.func, ctx=ast.Load()), args=[],
                        keywords=[ast.keyword(arg=a, value=ast.Name(id=a, ctx=ast.Load()))
                                  for a in fx.args])
        if fx.generator:
            gen = f"{PREFIX}gen_{fx.name}"
            setup.append(ast.Assign(targets=[ast.Name(id=gen, ctx=ast.Store())], value=call,
                                    lineno=0))
            setup.append(ast.parse(f"{fx.name} = next({gen})").body[0])
            teardown.insert(0, ast.parse(f"next({gen}, None)").body[0])
        else:
            setup.append(ast.Assign(targets=[ast.Name(id=fx.name, ctx=ast.Store())],
                                    value=call, lineno=0))
    return setup, teardown

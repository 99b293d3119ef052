"""pytest's own fixtures that tests of RL code datasets ask for, written out as child code.

KodCode-style modules check what a program prints (`capsys`, `capfd`), feed it `input()`
(`monkeypatch.setattr('builtins.input', ...)`), or hand it a scratch directory (`tmp_path`).
pytest does not run (modules.py), so each is a plain yield function defined in the test's
set-up lines and bound like the module's own fixtures (fixtures.py). They follow pytest's
documented behaviour for the parts listed below; other methods raise AttributeError, so such a
test errors instead of passing by accident.

- `capsys`, `capfd`, `caplog`: capture_fixtures.py.
- `tmp_path`: a fresh directory, a `pathlib.Path`.
- `monkeypatch`: `setattr` (object or dotted-path target), `delattr`, `setitem`, `delitem`,
  `setenv`, `delenv`, `syspath_prepend`, `chdir`, `context()`, `undo()`.

All of this runs in the program's child, which is the weak path (README "What a test may
trust"): the captured text comes back as plain data, and the test's expected side stays on the
trusted side. What a test changes is undone after its body; a test that stops early (a failed
assert) leaves it to the next test of the child, which undoes it before its own set-up
(`__fixture_reset`), so patches never leak into another test.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from sandbox_worker.kinds.capture_fixtures import CAPTURE_HELPERS, CAPTURES
from sandbox_worker.kinds.fixtures import PREFIX, SUPPORTED, Fixture

# the module that holds the test's undo stack: `sys` outlives each test's namespace
_RESET = f'''
def {PREFIX}reset():
    import sys
    undo = sys.__dict__.setdefault("_codereward_undo", [])
    while undo:
        try:
            undo.pop()()
        except Exception:
            pass


def {PREFIX}on_reset(fn):
    import sys
    sys.__dict__.setdefault("_codereward_undo", []).append(fn)


def {PREFIX}calls(mock):
    return [(tuple(c.args), dict(c.kwargs)) for c in mock.call_args_list]


def {PREFIX}undo(fn):
    import sys
    undo = sys.__dict__.setdefault("_codereward_undo", [])
    if fn in undo:
        undo.remove(fn)
    fn()
'''

_SOURCES = {
    **CAPTURES,
    "tmp_path": f'''
def {PREFIX}tmp_path():
    import pathlib, shutil, tempfile
    path = pathlib.Path(tempfile.mkdtemp(prefix="pytest-")).resolve()
    {PREFIX}on_reset(lambda: shutil.rmtree(path, ignore_errors=True))
    yield path
''',
    "monkeypatch": f'''
def {PREFIX}monkeypatch():
    import contextlib, importlib, os, sys
    notset = object()
    program = sys.modules.get("__solution__")
    test_names = globals()  # the test's namespace: it spells `solution.f` as plain `f`

    def resolve(dotted):
        parts = dotted.split(".")
        target = importlib.import_module(parts[0])
        for i in range(1, len(parts)):
            try:
                target = getattr(target, parts[i])
            except AttributeError:
                target = importlib.import_module(".".join(parts[:i + 1]))
        return target

    def split(dotted):
        if not isinstance(dotted, str) or "." not in dotted:
            raise TypeError(f"must be absolute import path string, not {{dotted!r}}")
        head, _, name = dotted.rpartition(".")
        return resolve(head), name

    class MonkeyPatch:
        def __init__(self):
            self._undo = []

        @classmethod
        @contextlib.contextmanager
        def context(cls):
            patch = cls()
            try:
                yield patch
            finally:
                patch.undo()

        def setattr(self, target, name, value=notset, raising=True):
            if value is notset:
                value = name
                target, name = split(target)
            old = getattr(target, name, notset)
            if raising and old is notset:
                raise AttributeError(f"{{target!r}} has no attribute {{name!r}}")
            if isinstance(target, type):  # keep staticmethod / classmethod wrappers
                old = target.__dict__.get(name, notset)
            self._undo.append(lambda: delattr(target, name) if old is notset
                              else setattr(target, name, old))
            setattr(target, name, value)
            if target is program:
                self.setitem(test_names, name, value)

        def delattr(self, target, name=notset, raising=True):
            if name is notset:
                target, name = split(target)
            if not hasattr(target, name):
                if raising:
                    raise AttributeError(name)
                return
            old = getattr(target, name)
            if isinstance(target, type):
                old = target.__dict__.get(name, old)
            self._undo.append(lambda: setattr(target, name, old))
            delattr(target, name)
            if target is program:
                self.delitem(test_names, name, raising=False)

        def setitem(self, dic, name, value):
            old = dic.get(name, notset)
            self._undo.append(lambda: dic.pop(name, None) if old is notset
                              else dic.__setitem__(name, old))
            dic[name] = value

        def delitem(self, dic, name, raising=True):
            if name not in dic:
                if raising:
                    raise KeyError(name)
                return
            old = dic[name]
            self._undo.append(lambda: dic.__setitem__(name, old))
            del dic[name]

        def setenv(self, name, value, prepend=None):
            value = str(value)
            if prepend and name in os.environ:
                value = value + prepend + os.environ[name]
            self.setitem(os.environ, name, value)

        def delenv(self, name, raising=True):
            self.delitem(os.environ, name, raising=raising)

        def syspath_prepend(self, path):
            saved = list(sys.path)
            self._undo.append(lambda: sys.path.__setitem__(slice(None), saved))
            sys.path.insert(0, str(path))
            importlib.invalidate_caches()

        def chdir(self, path):
            saved = os.getcwd()
            self._undo.append(lambda: os.chdir(saved))
            os.chdir(path)

        def undo(self):
            while self._undo:
                self._undo.pop()()

    patch = MonkeyPatch()
    {PREFIX}on_reset(patch.undo)
    yield patch
    {PREFIX}undo(patch.undo)
''',
}

assert tuple(_SOURCES) == SUPPORTED
BUILTINS = {name: Fixture(name=name, func=PREFIX + name, args=(), generator=True,
                          autouse=False) for name in SUPPORTED}

def asked(tree: ast.Module, own: Iterable[str]) -> set[str]:
    """The supported builtin fixtures that a function of the module takes as a parameter
    and that the module does not define itself."""
    wanted = set(SUPPORTED) - set(own)
    return {a.arg for node in tree.body if isinstance(node, ast.FunctionDef)
            for a in node.args.args if a.arg in wanted}


def definitions(program_names: Iterable[str], fixtures: Iterable[str] = ()) -> list[ast.stmt]:
    """One statement (one request to the child) defining the reset helpers and the builtin
    `fixtures` asked for, then a call that undoes what an earlier test left;
    `program_names` are the module names a dotted patch target may call the program."""
    wanted = set(fixtures)
    # `patch("solution.f")` imports the program by the name the test knows it by
    source = (f"for {PREFIX}name in {tuple(sorted(program_names))!r}:\n"
              f"    __import__('sys').modules.setdefault({PREFIX}name, "
              "__import__('sys').modules['__solution__'])\n" + _RESET
              + (CAPTURE_HELPERS if wanted & {"capsys", "capfd"} else "")
              + "".join(src for name, src in _SOURCES.items() if name in wanted))
    block = ast.If(test=ast.Constant(True), body=ast.parse(source).body, orelse=[])
    return [block, *ast.parse(f"{PREFIX}reset()").body]

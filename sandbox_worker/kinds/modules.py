"""`unittest` and `pytest` test modules as multi-statement assert tests (one per test).

Nothing of unittest or pytest runs: a program could patch either. Each test method or test
function (each parameter set of a `parametrize`) becomes one test source that the assert
path judges (session.py): the module's own set-up lines first, then the test's body, with
`self.assertEqual(a, b)` written as `assert a == b` (and so on for the assert methods),
`with pytest.raises(E):` / `self.assertRaises(E)` as try/except/else, and `pytest.approx`
as `math.isclose`. Top-level asserts are judged on the trusted side; what must run in the
child (set-up lines, helpers, raise checks) is the same weak path as for multi-statement
asserts (README "What a test may trust").

Supported: module-level helpers and constants; pytest `test*` functions with stacked
`@pytest.mark.parametrize` (skip marks drop the test); `unittest.TestCase` classes with
`setUp`/`tearDown`, `setUpClass`, helper methods and `subTest`; the module's own pytest
fixtures (fixtures.py); pytest's `capsys`, `capfd`, `tmp_path` and `monkeypatch`
(pytest_builtins.py). pytest's other built-in fixtures and other decorators are not: such a
test becomes one that errors, saying why.
"""

from __future__ import annotations

import ast
import copy
import functools
import itertools

from sandbox_worker.kinds import patches, pytest_builtins
from sandbox_worker.kinds.fixtures import Fixture, Unsupported, bind, extract
from sandbox_worker.kinds.rewrite import Rewrite, make_call

PROGRAM_MODULES = frozenset({"solution", "main", "program", "submission", "answer",
                             "__solution__"})
_FRAMEWORKS = frozenset({"unittest", "pytest"})
MAX_PARAM_SETS = 256

def _prefix(tree: ast.Module) -> tuple[list[ast.stmt], set[str], dict[str, Fixture]]:
    """The module's set-up statements (imports of the program and of the frameworks dropped,
    fixtures undecorated), the names the program module was imported as, and its fixtures."""
    keep: list[ast.stmt] = [*ast.parse("import math, re, collections").body]
    aliases: set[str] = set()
    fixtures: dict[str, Fixture] = {}
    for stmt in tree.body:
        found = extract(stmt)
        if found is not None:
            keep.append(found[0])
            fixtures[found[1].name] = found[1]
            continue
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "unittest":
            stmt = ast.ImportFrom(module="unittest", names=[a for a in stmt.names
                                                            if a.name == "mock"], level=0)
        if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.names and (
                stmt.module == "unittest.mock" or stmt.module == "unittest"):
            keep.append(stmt)  # mock's patchers (patches.py); nothing else of the framework
            continue
        if isinstance(stmt, ast.ImportFrom) and stmt.module and (
                stmt.module.split(".")[0] in PROGRAM_MODULES | _FRAMEWORKS):
            continue  # the program's names are its globals already
        if isinstance(stmt, ast.Import):
            names = [a for a in stmt.names if a.name.split(".")[0] not in _FRAMEWORKS
                     or a.name == "unittest.mock"]
            for a in names:
                if a.name in PROGRAM_MODULES:
                    aliases.add(a.asname or a.name)
                    # `solution.f` is spelled `f`; a bare `solution` (monkeypatch.setattr's
                    # target, hasattr) is the program's module
                    keep += ast.parse(f"{a.asname or a.name} = "
                                      "__import__('sys').modules['__solution__']").body
            names = [a for a in names if a.name not in PROGRAM_MODULES]
            if names:
                keep.append(ast.Import(names=names))
            continue
        if isinstance(stmt, ast.If) and "__main__" in ast.unparse(stmt.test):
            continue
        if _is_test_fn(stmt) or _is_test_case(stmt):
            continue
        keep.append(stmt)
    return keep, aliases, fixtures


def _is_test_fn(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name.startswith("test")


def _is_test_case(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.ClassDef) and any(
        ast.unparse(b).split(".")[-1].endswith("TestCase") for b in stmt.bases)


def _failing(why: str) -> list[ast.stmt]:
    return [ast.Raise(exc=make_call("RuntimeError", ast.Constant(why)), cause=None)]


def _lists(tree: ast.Module) -> dict[str, ast.List | ast.Tuple]:
    """Module-level `NAME = [...]` / `NAME = (...)`: parametrize values a test may name."""
    return {stmt.targets[0].id: stmt.value for stmt in tree.body
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, ast.List | ast.Tuple)}


def _param_item(item: ast.expr, n_names: int) -> ast.expr | None:
    """A parameter set's value; `pytest.param(a, b, id=...)` unwrapped; None when its
    `marks=` skips it."""
    if not (isinstance(item, ast.Call) and ast.unparse(item.func) == "pytest.param"):
        return item
    marks = next((k.value for k in item.keywords if k.arg == "marks"), None)
    if marks is not None and any(w in ast.unparse(marks) for w in ("skip", "xfail")):
        return None
    if n_names == 1 and len(item.args) == 1:
        return item.args[0]
    return ast.Tuple(elts=list(item.args), ctx=ast.Load())


def _param_sets(fn: ast.FunctionDef | ast.AsyncFunctionDef,
                lists: dict[str, ast.List | ast.Tuple]) -> list[list[ast.stmt]] | None:
    """Binding statements per parameter set; None when a skip mark drops the test."""
    sets: list[list[list[ast.stmt]]] = []
    for dec in patches.split(fn.decorator_list)[1]:
        text = ast.unparse(dec.func if isinstance(dec, ast.Call) else dec)
        if text.endswith(("mark.skip", "mark.skipif", "mark.xfail")):
            return None
        if not (isinstance(dec, ast.Call) and text.endswith("mark.parametrize") and
                len(dec.args) >= 2):
            raise Unsupported(f"decorator {text} is not supported")
        names = ast.literal_eval(dec.args[0])
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        values = dec.args[1]
        if isinstance(values, ast.Name) and values.id in lists:
            values = copy.deepcopy(lists[values.id])  # `CASES = [...]` at module level
        if not isinstance(values, ast.List | ast.Tuple):
            raise Unsupported("parametrize values must be a literal list or a module-level "
                              "name bound to one")
        one: list[list[ast.stmt]] = []
        for item in values.elts:
            value = _param_item(item, len(names))
            if value is None:
                continue
            target = ast.Tuple(elts=[ast.Name(id=n, ctx=ast.Store()) for n in names],
                               ctx=ast.Store()) if len(names) > 1 else \
                ast.Name(id=names[0], ctx=ast.Store())
            one.append([ast.Assign(targets=[target], value=value, lineno=0)])
        sets.append(one)
    if not sets:
        return [[]]
    combos = list(itertools.islice(itertools.product(*sets), MAX_PARAM_SETS))
    return [[s for part in combo for s in part] for combo in combos]


def _pytest_tests(fn: ast.FunctionDef | ast.AsyncFunctionDef, prefix: list[ast.stmt],
                  rw: Rewrite, fixtures: dict[str, Fixture],
                  lists: dict[str, ast.List | ast.Tuple]) -> list[tuple[str, list[ast.stmt]]]:
    try:
        sets = _param_sets(fn, lists)
    except (Unsupported, ValueError, SyntaxError) as exc:
        return [(fn.name, _failing(str(exc)))]
    if sets is None:
        return []
    names = [f"{fn.name}[{i}]" if len(sets) > 1 else fn.name for i in range(len(sets))]
    if isinstance(fn, ast.AsyncFunctionDef):
        return [(n, _failing("pytest async tests are not supported")) for n in names]
    bound = {t.id for a in (sets[0] if sets else []) if isinstance(a, ast.Assign)
             for t in ast.walk(a.targets[0]) if isinstance(t, ast.Name)}
    n_defaults = len(fn.args.defaults)
    needed = [a.arg for a in fn.args.args[:len(fn.args.args) - n_defaults]]
    counter = patches.Counter()
    try:
        start, stop, n_mocks = patches.from_decorators(patches.split(fn.decorator_list)[0],
                                                       needed, counter)
        setup, teardown = bind(needed[n_mocks:], fixtures, bound)
    except (Unsupported, ValueError) as exc:
        return [(n, _failing(str(exc))) for n in names]
    body = _body(fn.body, rw, counter)
    return [(n, [*prefix, *binds, *start, *setup, *body, *teardown, *stop])
            for n, binds in zip(names, sets, strict=True)]


def _body(stmts: list[ast.stmt], rw: Rewrite, counter: patches.Counter) -> list[ast.stmt]:
    """A test's statements, rewritten, with top-level `with patch(...)` blocks flattened."""
    out: list[ast.stmt] = []
    for stmt in copy.deepcopy(stmts):
        flat = patches.flatten_with(stmt, counter) if isinstance(stmt, ast.With) else None
        if flat is None:
            out.append(rw.visit(stmt))
        else:
            out += _body(flat, rw, counter)
    return out


_CLEANUPS = """
def addCleanup(self, function, *args, **kwargs):
    self.__dict__.setdefault("_cleanups", []).append((function, args, kwargs))

def doCleanups(self):
    while self.__dict__.get("_cleanups"):
        function, args, kwargs = self._cleanups.pop()
        function(*args, **kwargs)
"""


def _unittest_tests(cls: ast.ClassDef, prefix: list[ast.stmt],
                    rw: Rewrite) -> list[tuple[str, list[ast.stmt]]]:
    plain = rw.visit(copy.deepcopy(cls))
    plain.bases, plain.keywords = [], []
    plain.body = [s for s in plain.body if not (
        isinstance(s, ast.FunctionDef) and s.name.startswith("test"))] or [ast.Pass()]
    own = {s.name for s in cls.body if isinstance(s, ast.FunctionDef)}
    setup = ast.parse(
        (f"{cls.name}.setUpClass()\n" if "setUpClass" in own else "")
        + f"self = {cls.name}()\n" + ("self.setUp()\n" if "setUp" in own else "")).body
    teardown = ast.parse("self.tearDown()").body if "tearDown" in own else []
    if "addCleanup" in ast.unparse(cls) and "addCleanup" not in own:  # TestCase's own
        plain.body += ast.parse(_CLEANUPS).body
        teardown += ast.parse("self.doCleanups()").body
    out = []
    for method in cls.body:
        if isinstance(method, ast.FunctionDef) and method.name.startswith("test"):
            name = f"{cls.name}.{method.name}"
            mocks, others = patches.split(method.decorator_list)
            if others:
                text = ast.unparse(others[0])
                if "skip" in text:
                    continue
                out.append((name, _failing(f"decorator {text} is not supported")))
                continue
            counter = patches.Counter()
            try:
                start, stop, _ = patches.from_decorators(
                    mocks, [a.arg for a in method.args.args[1:]], counter)
            except ValueError as exc:
                out.append((name, _failing(str(exc))))
                continue
            body = _body(method.body, rw, counter)
            out.append((name, [*prefix, plain, *setup, *start, *body, *stop, *teardown]))
    return out


@functools.lru_cache(maxsize=256)
def _converted(kind: str, source: str) -> tuple[tuple[str, str], ...]:
    return tuple(_convert(kind, source))


def convert(kind: str, source: str) -> list[tuple[str, str]]:
    """(test name, test source) for each test the module defines, in module order (cached:
    a GRPO group shares its test module).

    Raises SyntaxError (or ValueError) when the module does not parse."""
    return list(_converted(kind, source))


def _convert(kind: str, source: str) -> list[tuple[str, str]]:
    tree = ast.parse(source)
    lists = copy.deepcopy(_lists(tree))  # as written: the prefix's rewrite changes them
    prefix, aliases, fixtures = _prefix(tree)
    rw = Rewrite(aliases)
    prefix = [rw.visit(s) for s in prefix]
    builtins = pytest_builtins.asked(tree, fixtures) if kind == "pytest" else set()
    if builtins or patches.used(tree):
        # first: an earlier test's leftovers are undone before any set-up line runs
        prefix[1:1] = pytest_builtins.definitions(PROGRAM_MODULES, builtins)
    if builtins:
        fixtures = {**pytest_builtins.BUILTINS, **fixtures}
    tests: list[tuple[str, list[ast.stmt]]] = []
    for stmt in tree.body:
        if kind == "pytest" and _is_test_fn(stmt):
            assert isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef)
            tests += _pytest_tests(stmt, prefix, rw, fixtures, lists)
        elif kind == "unittest" and _is_test_case(stmt):
            assert isinstance(stmt, ast.ClassDef)
            tests += _unittest_tests(stmt, prefix, rw)
    out = []
    for name, body in tests:
        module = ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
        out.append((name, ast.unparse(module)))
    return out

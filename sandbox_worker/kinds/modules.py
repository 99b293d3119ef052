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
fixtures (fixtures.py). pytest's built-in fixtures and other decorators are not: such a test
becomes one that errors, saying why.
"""

from __future__ import annotations

import ast
import copy
import functools
import itertools
from typing import Any

from sandbox_worker.kinds.fixtures import Fixture, Unsupported, bind, extract

PROGRAM_MODULES = frozenset({"solution", "main", "program", "submission", "answer",
                             "__solution__"})
_FRAMEWORKS = frozenset({"unittest", "pytest"})
MAX_PARAM_SETS = 256

_BINARY = {"assertEqual": ast.Eq, "assertEquals": ast.Eq, "assertNotEqual": ast.NotEq,
           "assertIs": ast.Is, "assertIsNot": ast.IsNot, "assertIn": ast.In,
           "assertNotIn": ast.NotIn, "assertGreater": ast.Gt, "assertGreaterEqual": ast.GtE,
           "assertLess": ast.Lt, "assertLessEqual": ast.LtE, "assertListEqual": ast.Eq,
           "assertTupleEqual": ast.Eq, "assertSetEqual": ast.Eq, "assertDictEqual": ast.Eq,
           "assertSequenceEqual": ast.Eq, "assertMultiLineEqual": ast.Eq}


def _expr(src: str) -> ast.expr:
    return ast.parse(src, mode="eval").body


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=_expr(name), args=list(args), keywords=[])


def _kw(call: ast.Call, name: str, pos: int) -> ast.expr | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return call.args[pos] if len(call.args) > pos else None


def _raises(exc: ast.expr, body: list[ast.stmt]) -> ast.Try:
    """try: body / except exc: pass / else: raise AssertionError."""
    fail = ast.parse("raise AssertionError('DID NOT RAISE')").body
    return ast.Try(body=body, handlers=[ast.ExceptHandler(type=exc, name=None,
                                                          body=[ast.Pass()])],
                   orelse=fail, finalbody=[])


def _assert_for(call: ast.Call, method: str) -> ast.stmt | None:
    """The assert statement an assert-method call means, or None for other calls."""
    a = call.args
    if method in _BINARY and len(a) >= 2:
        return ast.Assert(test=ast.Compare(left=a[0], ops=[_BINARY[method]()],
                                           comparators=[a[1]]))
    if method in ("assertTrue", "assert_") and a:
        return ast.Assert(test=a[0])
    if method == "assertFalse" and a:
        return ast.Assert(test=ast.UnaryOp(op=ast.Not(), operand=a[0]))
    if method in ("assertIsNone", "assertIsNotNone") and a:
        op: ast.cmpop = ast.Is() if method == "assertIsNone" else ast.IsNot()
        return ast.Assert(test=ast.Compare(left=a[0], ops=[op],
                                           comparators=[ast.Constant(None)]))
    if method in ("assertIsInstance", "assertNotIsInstance") and len(a) >= 2:
        test: ast.expr = _call("isinstance", a[0], a[1])
        if method == "assertNotIsInstance":
            test = ast.UnaryOp(op=ast.Not(), operand=test)
        return ast.Assert(test=test)
    if method in ("assertAlmostEqual", "assertNotAlmostEqual") and len(a) >= 2:
        diff = _call("abs", ast.BinOp(left=a[0], op=ast.Sub(), right=a[1]))
        delta = _kw(call, "delta", 3)
        if delta is not None:
            test = ast.Compare(left=diff, ops=[ast.LtE()], comparators=[delta])
        else:
            places = _kw(call, "places", 2) or ast.Constant(7)
            test = ast.Compare(left=_call("round", diff, places), ops=[ast.Eq()],
                               comparators=[ast.Constant(0)])
        if method == "assertNotAlmostEqual":
            test = ast.UnaryOp(op=ast.Not(), operand=test)
        return ast.Assert(test=test)
    if method == "assertCountEqual" and len(a) >= 2:
        return ast.Assert(test=ast.Compare(
            left=_call("collections.Counter", a[0]), ops=[ast.Eq()],
            comparators=[_call("collections.Counter", a[1])]))
    if method in ("assertRegex", "assertNotRegex") and len(a) >= 2:
        test = _call("re.search", a[1], a[0])
        if method == "assertNotRegex":
            test = ast.UnaryOp(op=ast.Not(), operand=test)
        return ast.Assert(test=test)
    if method == "fail":
        return ast.Raise(exc=_call("AssertionError", *a[:1]), cause=None)
    return None


def _is_raises_cm(node: ast.expr) -> ast.expr | None:
    """The exception of `pytest.raises(E)` / `self.assertRaises(E)` used as a context."""
    if isinstance(node, ast.Call) and node.args and ast.unparse(node.func) in (
            "pytest.raises", "self.assertRaises", "self.assertRaisesRegex",
            "self.assertWarns"):
        return node.args[0]
    return None


class _Rewrite(ast.NodeTransformer):
    """Assert methods, raises checks, subTest and approx, rewritten in place."""

    def __init__(self, program_aliases: set[str]) -> None:
        self.aliases = program_aliases

    def visit_Expr(self, node: ast.Expr) -> Any:
        self.generic_visit(node)
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
                and ast.unparse(call.func.value) == "self":
            method = call.func.attr
            if method in ("assertRaises", "assertRaisesRegex") and len(call.args) >= 2:
                fn, *args = call.args[1:] if method == "assertRaises" else call.args[2:]
                body: list[ast.stmt] = [ast.Expr(ast.Call(func=fn, args=args,
                                                          keywords=call.keywords))]
                return _raises(call.args[0], body)
            stmt = _assert_for(call, method)
            if stmt is not None:
                return ast.copy_location(stmt, node)
        return node

    def visit_With(self, node: ast.With) -> Any:
        self.generic_visit(node)
        if len(node.items) == 1:
            ctx = node.items[0].context_expr
            exc = _is_raises_cm(ctx)
            if exc is not None:
                return _raises(exc, node.body)
            if isinstance(ctx, ast.Call) and ast.unparse(ctx.func) == "self.subTest":
                return node.body
        return node

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        if ast.unparse(node.func) == "pytest.approx" and node.args:
            return node  # handled where it is compared (visit_Compare)
        return node

    def visit_Compare(self, node: ast.Compare) -> Any:
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq | ast.NotEq):
            right = node.comparators[0]
            if isinstance(right, ast.Call) and ast.unparse(right.func) == "pytest.approx":
                rel = _kw(right, "rel", 1) or ast.Constant(1e-6)
                abs_ = _kw(right, "abs", 2) or ast.Constant(1e-12)
                close = ast.Call(func=_expr("math.isclose"), args=[node.left, right.args[0]],
                                 keywords=[ast.keyword("rel_tol", rel),
                                           ast.keyword("abs_tol", abs_)])
                return close if isinstance(node.ops[0], ast.Eq) else \
                    ast.UnaryOp(op=ast.Not(), operand=close)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id in self.aliases:
            return ast.copy_location(ast.Name(id=node.attr, ctx=node.ctx), node)
        return node


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
        if isinstance(stmt, ast.ImportFrom) and stmt.module and (
                stmt.module.split(".")[0] in PROGRAM_MODULES | _FRAMEWORKS):
            continue  # the program's names are its globals already
        if isinstance(stmt, ast.Import):
            names = [a for a in stmt.names if a.name.split(".")[0] not in _FRAMEWORKS]
            for a in names:
                if a.name in PROGRAM_MODULES:
                    aliases.add(a.asname or a.name)
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
    return [ast.Raise(exc=_call("RuntimeError", ast.Constant(why)), cause=None)]


def _param_sets(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[list[ast.stmt]] | None:
    """Binding statements per parameter set; None when a skip mark drops the test."""
    sets: list[list[list[ast.stmt]]] = []
    for dec in fn.decorator_list:
        text = ast.unparse(dec.func if isinstance(dec, ast.Call) else dec)
        if text.endswith(("mark.skip", "mark.skipif", "mark.xfail")):
            return None
        if not (isinstance(dec, ast.Call) and text.endswith("mark.parametrize") and
                len(dec.args) >= 2):
            raise Unsupported(f"decorator {text} is not supported")
        names = ast.literal_eval(dec.args[0])
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        values = dec.args[1]
        if not isinstance(values, ast.List | ast.Tuple):
            raise Unsupported("parametrize values must be a literal list")
        one: list[list[ast.stmt]] = []
        for item in values.elts:
            target = ast.Tuple(elts=[ast.Name(id=n, ctx=ast.Store()) for n in names],
                               ctx=ast.Store()) if len(names) > 1 else \
                ast.Name(id=names[0], ctx=ast.Store())
            one.append([ast.Assign(targets=[target], value=item, lineno=0)])
        sets.append(one)
    if not sets:
        return [[]]
    combos = list(itertools.islice(itertools.product(*sets), MAX_PARAM_SETS))
    return [[s for part in combo for s in part] for combo in combos]


def _pytest_tests(fn: ast.FunctionDef | ast.AsyncFunctionDef, prefix: list[ast.stmt],
                  rw: _Rewrite, fixtures: dict[str, Fixture]
                  ) -> list[tuple[str, list[ast.stmt]]]:
    try:
        sets = _param_sets(fn)
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
    try:
        setup, teardown = bind(needed, fixtures, bound)
    except Unsupported as exc:
        return [(n, _failing(str(exc))) for n in names]
    body = [rw.visit(s) for s in copy.deepcopy(fn.body)]
    return [(n, [*prefix, *binds, *setup, *body, *teardown])
            for n, binds in zip(names, sets, strict=True)]


def _unittest_tests(cls: ast.ClassDef, prefix: list[ast.stmt],
                    rw: _Rewrite) -> list[tuple[str, list[ast.stmt]]]:
    plain = rw.visit(copy.deepcopy(cls))
    plain.bases, plain.keywords = [], []
    plain.body = [s for s in plain.body if not (
        isinstance(s, ast.FunctionDef) and s.name.startswith("test"))] or [ast.Pass()]
    own = {s.name for s in cls.body if isinstance(s, ast.FunctionDef)}
    setup = ast.parse(
        (f"{cls.name}.setUpClass()\n" if "setUpClass" in own else "")
        + f"self = {cls.name}()\n" + ("self.setUp()\n" if "setUp" in own else "")).body
    teardown = ast.parse("self.tearDown()").body if "tearDown" in own else []
    out = []
    for method in cls.body:
        if isinstance(method, ast.FunctionDef) and method.name.startswith("test"):
            if method.decorator_list:
                text = ast.unparse(method.decorator_list[0])
                if "skip" in text:
                    continue
                out.append((f"{cls.name}.{method.name}", _failing(f"decorator {text} is not "
                                                                  "supported")))
                continue
            body = [rw.visit(s) for s in copy.deepcopy(method.body)]
            out.append((f"{cls.name}.{method.name}",
                        [*prefix, plain, *setup, *body, *teardown]))
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
    prefix, aliases, fixtures = _prefix(tree)
    rw = _Rewrite(aliases)
    prefix = [rw.visit(s) for s in prefix]
    tests: list[tuple[str, list[ast.stmt]]] = []
    for stmt in tree.body:
        if kind == "pytest" and _is_test_fn(stmt):
            assert isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef)
            tests += _pytest_tests(stmt, prefix, rw, fixtures)
        elif kind == "unittest" and _is_test_case(stmt):
            assert isinstance(stmt, ast.ClassDef)
            tests += _unittest_tests(stmt, prefix, rw)
    out = []
    for name, body in tests:
        module = ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
        out.append((name, ast.unparse(module)))
    return out

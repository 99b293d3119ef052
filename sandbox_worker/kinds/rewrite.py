"""Assert methods, raises checks, subTest and approx in unittest / pytest test bodies, rewritten
as plain asserts (and try/except for raises checks) that the assert path judges (modules.py)."""

from __future__ import annotations

import ast
from typing import Any

from sandbox_worker.kinds import patches

_BINARY = {"assertEqual": ast.Eq, "assertEquals": ast.Eq, "assertNotEqual": ast.NotEq,
           "assertIs": ast.Is, "assertIsNot": ast.IsNot, "assertIn": ast.In,
           "assertNotIn": ast.NotIn, "assertGreater": ast.Gt, "assertGreaterEqual": ast.GtE,
           "assertLess": ast.Lt, "assertLessEqual": ast.LtE, "assertListEqual": ast.Eq,
           "assertTupleEqual": ast.Eq, "assertSetEqual": ast.Eq, "assertDictEqual": ast.Eq,
           "assertSequenceEqual": ast.Eq, "assertMultiLineEqual": ast.Eq}


def _expr(src: str) -> ast.expr:
    return ast.parse(src, mode="eval").body


def make_call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=_expr(name), args=list(args), keywords=[])


def _kw(call: ast.Call, name: str, pos: int) -> ast.expr | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return call.args[pos] if len(call.args) > pos else None


_RAISED = "__codereward_raised"  # what a raises check caught, when the test names nothing


def _raises(exc: ast.expr, body: list[ast.stmt], target: ast.expr | None = None,
            match: ast.expr | None = None) -> list[ast.stmt]:
    """try: body / except exc: bind it / else: raise AssertionError; then, for
    `match=` / assertRaisesRegex, a top-level assert (judged trusted-side) that the
    message matches. `as excinfo` / `as cm` get `.value`, `.type` and `.exception`."""
    name = target.id if isinstance(target, ast.Name) else _RAISED
    fail = ast.parse("raise AssertionError('DID NOT RAISE')").body
    bind = ast.parse(f"{name} = __import__('types').SimpleNamespace(value={_RAISED}_e, "
                     f"type=type({_RAISED}_e), exception={_RAISED}_e)\n"
                     f"{_RAISED}_message = str({_RAISED}_e)").body
    out: list[ast.stmt] = [ast.Try(body=body, handlers=[ast.ExceptHandler(
        type=exc, name=f"{_RAISED}_e", body=bind)], orelse=fail, finalbody=[])]
    if match is not None:
        out.append(ast.Assert(test=make_call("re.search", match, ast.Name(
            id=f"{_RAISED}_message", ctx=ast.Load()))))
    return out


_WARNED = "__codereward_warned"  # messages of the warnings a warns check wanted


def _is_warns_cm(node: ast.expr) -> tuple[ast.expr, ast.expr | None] | None:
    """(warning class, message pattern or None) of `pytest.warns(W, match=...)` /
    `self.assertWarns(W)` / `self.assertWarnsRegex(W, pattern)` used as a context."""
    if not (isinstance(node, ast.Call) and node.args):
        return None
    func = ast.unparse(node.func)
    if func == "pytest.warns":
        return node.args[0], _kw(node, "match", 99)
    if func == "self.assertWarns":
        return node.args[0], None
    if func == "self.assertWarnsRegex":
        return node.args[0], _kw(node, "expected_regex", 1)
    return None


def _warns(category: ast.expr, body: list[ast.stmt], target: ast.expr | None,
           match: ast.expr | None) -> list[ast.stmt]:
    """The body under warnings.catch_warnings(record=True), then top-level asserts (judged
    trusted-side) that a warning of `category` came, with a message `match` finds."""
    # `__import__` in test statements gives a copy of `warnings` taken before the program
    # loaded (harness._SNAPSHOT): a program that replaced warnings.catch_warnings is not used
    head = ast.parse(f"with __import__('warnings').catch_warnings(record=True) as {_WARNED}_all:"
                     "\n    __import__('warnings').simplefilter('always')").body[0]
    assert isinstance(head, ast.With)
    head.body += body
    if isinstance(target, ast.Name):  # `as record`: the recorded warnings
        head.body.insert(0, ast.Assign(targets=[target], value=ast.Name(
            id=f"{_WARNED}_all", ctx=ast.Load()), lineno=0))
    pick = ast.parse(f"{_WARNED} = [str(w.message) for w in {_WARNED}_all "
                     f"if issubclass(w.category, C)]").body[0]
    assert isinstance(pick, ast.Assign) and isinstance(pick.value, ast.ListComp)
    pick.value.generators[0].ifs[0].args[1] = category  # type: ignore[attr-defined]
    out: list[ast.stmt] = [head, pick, ast.parse(
        f"assert {_WARNED}, 'DID NOT WARN'").body[0]]
    if match is not None:
        test = ast.parse(f"any(re.search(P, m) for m in {_WARNED})", mode="eval").body
        test.args[0].elt.args[0] = match  # type: ignore[attr-defined]
        out.append(ast.Assert(test=test))
    return out


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
        test: ast.expr = make_call("isinstance", a[0], a[1])
        if method == "assertNotIsInstance":
            test = ast.UnaryOp(op=ast.Not(), operand=test)
        return ast.Assert(test=test)
    if method in ("assertAlmostEqual", "assertNotAlmostEqual") and len(a) >= 2:
        diff = make_call("abs", ast.BinOp(left=a[0], op=ast.Sub(), right=a[1]))
        delta = _kw(call, "delta", 3)
        if delta is not None:
            test = ast.Compare(left=diff, ops=[ast.LtE()], comparators=[delta])
        else:
            places = _kw(call, "places", 2) or ast.Constant(7)
            test = ast.Compare(left=make_call("round", diff, places), ops=[ast.Eq()],
                               comparators=[ast.Constant(0)])
        if method == "assertNotAlmostEqual":
            test = ast.UnaryOp(op=ast.Not(), operand=test)
        return ast.Assert(test=test)
    if method == "assertCountEqual" and len(a) >= 2:
        return ast.Assert(test=ast.Compare(
            left=make_call("collections.Counter", a[0]), ops=[ast.Eq()],
            comparators=[make_call("collections.Counter", a[1])]))
    if method in ("assertRegex", "assertNotRegex") and len(a) >= 2:
        test = make_call("re.search", a[1], a[0])
        if method == "assertNotRegex":
            test = ast.UnaryOp(op=ast.Not(), operand=test)
        return ast.Assert(test=test)
    if method == "fail":
        return ast.Raise(exc=make_call("AssertionError", *a[:1]), cause=None)
    return None


def _is_raises_cm(node: ast.expr) -> tuple[ast.expr, ast.expr | None] | None:
    """(exception, message pattern or None) of `pytest.raises(E, match=...)` /
    `self.assertRaises(E)` / `self.assertRaisesRegex(E, pattern)` used as a context."""
    if not (isinstance(node, ast.Call) and node.args):
        return None
    func = ast.unparse(node.func)
    if func in ("pytest.raises", "self.assertRaises"):
        return node.args[0], _kw(node, "match", 99) if func == "pytest.raises" else None
    if func == "self.assertRaisesRegex":
        return node.args[0], _kw(node, "expected_regex", 1)
    return None


def _approx(got: ast.expr, want: ast.expr, rel: ast.expr, abs_: ast.expr) -> ast.expr:
    """`got == pytest.approx(want)`: math.isclose, element by element for a literal list or
    tuple (the program's value read once; a length that differs fails)."""
    def close(a: ast.expr, b: ast.expr) -> ast.expr:
        return ast.Call(func=_expr("math.isclose"), args=[a, b], keywords=[
            ast.keyword("rel_tol", rel), ast.keyword("abs_tol", abs_)])
    if not isinstance(want, ast.List | ast.Tuple) or any(
            isinstance(e, ast.Starred) for e in want.elts):
        return close(got, want)
    a, b = ast.Name(id="__approx_a", ctx=ast.Load()), ast.Name(id="__approx_b", ctx=ast.Load())
    each = ast.BoolOp(op=ast.And(), values=[
        _expr("__approx_a is not None"), _expr("__approx_b is not None"), close(a, b)])
    pairs = ast.ListComp(elt=each, generators=[ast.comprehension(
        target=ast.Tuple(elts=[ast.Name(id="__approx_a", ctx=ast.Store()),
                               ast.Name(id="__approx_b", ctx=ast.Store())], ctx=ast.Store()),
        iter=make_call("itertools.zip_longest", got, want), ifs=[], is_async=0)])
    return ast.Compare(left=pairs, ops=[ast.Eq()], comparators=[
        ast.List(elts=[ast.Constant(True)] * len(want.elts), ctx=ast.Load())])


class Rewrite(ast.NodeTransformer):
    """Assert methods, raises checks, subTest and approx, rewritten in place."""

    def __init__(self, program_aliases: set[str]) -> None:
        self.aliases = program_aliases

    def visit_Expr(self, node: ast.Expr) -> Any:
        self.generic_visit(node)
        call = node.value
        if isinstance(call, ast.Call):
            mocked = patches.mock_assert(call)
            if mocked is not None:
                return ast.copy_location(mocked, node)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
                and ast.unparse(call.func.value) == "self":
            method = call.func.attr
            if method in ("assertRaises", "assertRaisesRegex") and len(call.args) >= 2:
                fn, *args = call.args[1:] if method == "assertRaises" else call.args[2:]
                body: list[ast.stmt] = [ast.Expr(ast.Call(func=fn, args=args,
                                                          keywords=call.keywords))]
                return _raises(call.args[0], body,
                               match=call.args[1] if method == "assertRaisesRegex" else None)
            stmt = _assert_for(call, method)
            if stmt is not None:
                return ast.copy_location(stmt, node)
        return node

    def visit_With(self, node: ast.With) -> Any:
        self.generic_visit(node)
        if len(node.items) == 1:
            ctx = node.items[0].context_expr
            found = _is_raises_cm(ctx)
            if found is not None:
                return _raises(found[0], node.body, node.items[0].optional_vars, found[1])
            warns = _is_warns_cm(ctx)
            if warns is not None:
                return _warns(warns[0], node.body, node.items[0].optional_vars, warns[1])
            if isinstance(ctx, ast.Call) and ast.unparse(ctx.func) == "self.subTest":
                return node.body
        return node

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        if ast.unparse(node.func) == "pytest.approx" and node.args:
            return node  # handled where it is compared (visit_Compare)
        if ast.unparse(node.func) == "pytest.param":  # in a module-level list of cases
            return node.args[0] if len(node.args) == 1 else \
                ast.Tuple(elts=list(node.args), ctx=ast.Load())
        return node

    def visit_Compare(self, node: ast.Compare) -> Any:
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq | ast.NotEq):
            right = node.comparators[0]
            if isinstance(right, ast.Call) and ast.unparse(right.func) == "pytest.approx":
                rel = _kw(right, "rel", 1) or ast.Constant(1e-6)
                abs_ = _kw(right, "abs", 2) or ast.Constant(1e-12)
                close = _approx(node.left, right.args[0], rel, abs_)
                return close if isinstance(node.ops[0], ast.Eq) else \
                    ast.UnaryOp(op=ast.Not(), operand=close)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id in self.aliases:
            return ast.copy_location(ast.Name(id=node.attr, ctx=node.ctx), node)
        return node

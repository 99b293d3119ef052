"""Rewrite common test shapes so their asserts stay top-level, where the trusted side judges them.

Anything that runs in the child can be forged by a program that walks the interpreter's frames
(it can read the request nonce and answer "ok" for a whole statement). So before planning, two
shapes are flattened into plain top-level asserts, with no statement left for the child to run:

- HumanEval style: `def check(candidate): <body>` followed by `check(entry)` becomes `<body>`
  with `candidate` renamed to `entry`;
- `for x in <constant iterable>: assert ...` (also `for x, y in [(1, 2), ...]`) becomes one
  assert per item with the loop variables replaced by literal constants.

Anything else (loops over program values, try/except, helpers) is left as it is.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from typing import Any

MAX_UNROLLED = 500  # most asserts one loop may turn into
_LITERAL_CHARS = 2000  # longest literal a loop value may become
# statements whose meaning changes when a function body becomes top-level code
_SCOPE_BREAKERS = (ast.Return, ast.Yield, ast.YieldFrom, ast.Await, ast.Global, ast.Nonlocal)


def _literal(value: Any) -> ast.expr | None:
    """An AST literal that evaluates to `value` exactly, or None."""
    if isinstance(value, float) and (value != value or value in (float("inf"), -float("inf"))):
        return None
    scalar = value is None or isinstance(value, bool | int | float | str | bytes)
    if not scalar and not (isinstance(value, tuple | list)
                           and all(_literal(v) is not None for v in value)):
        return None
    text = repr(value)
    if len(text) > _LITERAL_CHARS:
        return None
    try:
        node = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return node if ast.literal_eval(node) == value else None


class _Substitute(ast.NodeTransformer):
    def __init__(self, names: dict[str, ast.expr]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.names:
            return ast.copy_location(copy.deepcopy(self.names[node.id]), node)
        return node


def _binds(tree: ast.AST, names: set[str]) -> bool:
    """True when `tree` assigns, deletes or takes as a parameter any of `names`."""
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Name) and not isinstance(sub.ctx, ast.Load) and sub.id in names:
            return True
        if isinstance(sub, ast.arg) and sub.arg in names:
            return True
        if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and (
                sub.name in names):
            return True
    return False


def _targets(target: ast.expr) -> list[str] | None:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List) and all(
            isinstance(e, ast.Name) for e in target.elts):
        return [e.id for e in target.elts if isinstance(e, ast.Name)]
    return None


def _unroll_for(node: ast.For, constant: Callable[[ast.expr], Any],
                later: list[ast.stmt], budget: int = MAX_UNROLLED) -> list[ast.stmt] | None:
    """The asserts of a constant loop, one per item (nested constant loops too); None when
    the loop does not qualify or would make more than `budget` asserts."""
    names = _targets(node.target)
    if (names is None or node.orelse or not node.body
            or not all(isinstance(s, ast.Assert | ast.For) for s in node.body)
            or _binds(ast.Module(node.body, []), set(names))
            or any(isinstance(n, ast.Name) and n.id in names
                   for s in later for n in ast.walk(s))):  # later code reads the loop variable
        return None
    try:
        items = list(constant(node.iter))
    except Exception:
        return None
    if len(items) * len(node.body) > budget:
        return None
    out: list[ast.stmt] = []
    for item in items:
        if len(names) == 1 and isinstance(node.target, ast.Name):
            parts = [item]
        elif isinstance(item, tuple | list) and len(item) == len(names):
            parts = list(item)
        else:
            return None
        literals = [_literal(p) for p in parts]
        if any(lit is None for lit in literals):
            return None
        mapping = {n: lit for n, lit in zip(names, literals, strict=True) if lit is not None}
        for k, stmt in enumerate(node.body):
            new = _Substitute(mapping).visit(copy.deepcopy(stmt))
            if isinstance(new, ast.For):  # an inner loop, its iterable now made of constants
                after = [*node.body[k + 1:], *later]
                inner = _unroll_for(new, constant, after, budget - len(out))
                if inner is None:
                    return None
                out += inner
            else:
                out.append(new)
            if len(out) > budget:
                return None
    return out


def _inline_check(body: list[ast.stmt]) -> list[ast.stmt] | None:
    """`def check(candidate): ...` + `check(entry)` -> the body of check on `entry`."""
    defs = [s for s in body if isinstance(s, ast.FunctionDef) and s.name == "check"]
    if len(defs) != 1 or not body or defs[0] is body[-1]:
        return None
    fn, call = defs[0], body[-1]
    a = fn.args
    if (fn.decorator_list or a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg
            or a.defaults or len(a.args) != 1):
        return None
    if not (isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
            and isinstance(call.value.func, ast.Name) and call.value.func.id == "check"
            and not call.value.keywords and len(call.value.args) == 1
            and isinstance(call.value.args[0], ast.Name)):
        return None
    param, entry = a.args[0].arg, call.value.args[0].id
    others = [s for s in body if s is not fn and s is not call]
    if any(isinstance(n, ast.Name) and n.id == "check" for s in others for n in ast.walk(s)):
        return None
    if any(isinstance(n, _SCOPE_BREAKERS) for s in fn.body for n in ast.walk(s)):
        return None
    if _binds(ast.Module(fn.body, []), {param, entry}):
        return None
    renamed = [_Substitute({param: ast.Name(entry, ast.Load())}).visit(copy.deepcopy(s))
               for s in fn.body  # docstrings dropped: each would be a round trip for nothing
               if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    index = body.index(fn)
    return [*body[:index], *body[index + 1:-1], *renamed]


def _immutable(value: Any) -> bool:
    return not isinstance(value, list) and (
        not isinstance(value, tuple) or all(_immutable(v) for v in value))


def _only_read(body: list[ast.stmt], name: str) -> bool:
    """`name` is never handed to a call, a method or a subscript, where it could be mutated
    (then each use getting its own copy of the literal would change the test's meaning)."""
    for node in ast.walk(ast.Module(body, [])):
        kids = [*ast.iter_child_nodes(node)] if isinstance(
            node, ast.Call | ast.keyword | ast.Starred) else []
        if isinstance(node, ast.Attribute | ast.Subscript):
            kids = [node.value]
        if any(isinstance(k, ast.Name) and k.id == name for k in kids):
            return False
    return True


def _inline_constants(body: list[ast.stmt], constant: Callable[[ast.expr], Any],
                      ) -> list[ast.stmt]:
    """`expected = [1, 2]` (program-independent, never rebound) is substituted into the
    statements after it and dropped: the value stays on the trusted side, out of the child."""
    out: list[ast.stmt] = []
    rest = list(body)
    while rest:
        stmt, rest = rest[0], rest[1:]
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and not _binds(ast.Module(rest, []), {stmt.targets[0].id})):
            try:
                value = constant(stmt.value)
                lit = _literal(value)
            except Exception:
                lit = None
            if lit is not None and (_immutable(value) or _only_read(rest, stmt.targets[0].id)):
                names = {stmt.targets[0].id: lit}
                rest = [_Substitute(names).visit(copy.deepcopy(s)) for s in rest]
                continue
        out.append(stmt)
    return out


def flatten(tree: ast.Module, constant: Callable[[ast.expr], Any]) -> list[ast.stmt]:
    """Statements of a test with check functions inlined, program-independent constants
    substituted and constant loops unrolled."""
    body = list(tree.body)
    inlined = _inline_check(body)
    if inlined is not None:
        body = inlined
    body = _inline_constants(body, constant)
    out: list[ast.stmt] = []
    for i, stmt in enumerate(body):
        unrolled = (_unroll_for(stmt, constant, body[i + 1:])
                    if isinstance(stmt, ast.For) else None)
        if unrolled is None:
            out.append(stmt)
        else:
            out += [ast.fix_missing_locations(s) for s in unrolled]
    return out

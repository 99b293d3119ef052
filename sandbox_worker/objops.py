"""Operators between a program part and a test value (`v * 2`, `(10 - v).x`), for compare.py.

On a program object only its own `__mul__`/`__rsub__` can say what `v * 2` is, so the program's
child applies the operator, with the test value sent as data, as it would to `v.scale(2)`;
the answer must be a program object (harness._objop). On plain data the operator is computed
on the trusted side (top level) or on the value reduced to its plain items (inside a chain).
"""

from __future__ import annotations

import ast
import copy
import json
from typing import Any, Protocol

from sandbox_worker import values
from sandbox_worker.skeleton import Const, Hole, Node, Op

OBJOP_HOOK = "__codereward_objop__"  # harness._objop: `(v * 2).x` inside a program part


class Planner(Protocol):
    def rooted(self, node: ast.AST, scope: frozenset[str] = ...) -> bool: ...
    def depends(self, node: ast.AST, own_ok: bool = ...) -> bool: ...
    def constant(self, node: ast.expr) -> Node: ...


def mixed(planner: Planner, node: ast.BinOp, scope: frozenset[str]
          ) -> tuple[ast.expr, ast.expr, Const | None, str] | None:
    """(program part, test side, its value, side of the test side) of `v * 2` / `2 * v`:
    the value is computed here, or None where the test side reads comprehension variables
    (`v * k`), whose plain values the child gets with the request; None for any other
    operator."""
    for part, other, side in ((node.left, node.right, "r"), (node.right, node.left, "l")):
        if not planner.rooted(part, scope):
            continue
        names = {n.id for n in ast.walk(other) if isinstance(n, ast.Name)}
        if names & scope:
            if names <= scope and not any(isinstance(n, ast.Call) for n in ast.walk(other)):
                return part, other, None, side  # plain values and operators only
            continue
        if not planner.depends(other):
            const = planner.constant(other)
            if isinstance(const, Const):
                return part, other, const, side
    return None


def guarded_hole(planner: Planner, node: ast.expr, scope: frozenset[str],
                 params: tuple[str, ...]) -> Hole:
    """The program part `node` as a hole; each operator in it between a program part and a
    test value becomes OBJOP_HOOK(op, side, part, value), the value sent as data."""
    consts: dict[str, Any] = {}

    class Guard(ast.NodeTransformer):
        def visit_BinOp(self, op_node: ast.BinOp) -> ast.AST:
            found = mixed(planner, op_node, scope)
            if found is None or not (planner.rooted(op_node.left, scope) or
                                     planner.rooted(op_node.right, scope)):
                return self.generic_visit(op_node)
            part, other, const, side = found
            if const is not None:
                name = f"__codereward_c{len(consts)}"
                consts[name] = values.encode(const.value)
                other = ast.Name(name, ast.Load())
            return ast.Call(ast.Name(OBJOP_HOOK, ast.Load()), [
                ast.Constant(type(op_node.op).__name__), ast.Constant(side),
                self.visit(part), other], [])

    src = ast.unparse(ast.fix_missing_locations(Guard().visit(copy.deepcopy(node))))
    return Hole(src, params=params, consts=json.dumps(consts) if consts else "")


def object_operator(op: type[ast.operator], left: Node, right: Node) -> Node | None:
    """`v * 2`, `1 - v` at the top level: a hole the child answers by applying the
    operator when its value is a program object (skeleton "objop"), else None."""
    for hole, other, side in ((left, right, "r"), (right, left, "l")):
        if (isinstance(hole, Hole) and isinstance(other, Const) and not hole.clean
                and not hole.params and not hole.dispatch and not hole.consts):
            try:
                operand = json.dumps(values.encode(other.value))
            except (TypeError, ValueError, RecursionError):
                return None
            dispatched = Hole(hole.src, dispatch=f"op:{op.__name__}:{side}", operand=operand)
            return Op("objop", (dispatched, other), (op, side))
    return None

"""Asserts nested in statements the child runs: the child sends both sides, this side judges.

`assert a == b` inside a loop or helper becomes `OBSERVE('Eq', a, b)`; the harness hook sends
both values as plain data and waits for the trusted side's answer (a custom `__eq__` of the
program takes no part). Split from compare.py, which plans top-level asserts.
"""

from __future__ import annotations

import ast
from typing import Any

from sandbox_worker import values
from sandbox_worker.safe_ops import CMPOPS

OBSERVE = "__codereward_compare__"  # name of the harness hook in set-up/loop statements


class _ObserveAsserts(ast.NodeTransformer):
    """`assert a == b` anywhere in a statement -> `OBSERVE('Eq', a, b)`: the child sends both
    values as plain data and this side answers whether the comparison holds."""

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        test = node.test
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1
                and type(test.ops[0]) in CMPOPS):
            return node
        call = ast.Call(func=ast.Name(OBSERVE, ast.Load()),
                        args=[ast.Constant(type(test.ops[0]).__name__), test.left,
                              test.comparators[0]], keywords=[])
        return ast.copy_location(ast.Expr(call), node)


def observe_asserts(stmt: ast.stmt) -> ast.AST:
    tree: ast.AST = _ObserveAsserts().visit(stmt)
    return ast.fix_missing_locations(tree)


_BY_NAME = {cls.__name__: fn for cls, fn in CMPOPS.items()}


def judge_observation(obs: Any) -> bool:
    """Whether an observed `left OP right` holds, on decoded plain values (trusted side)."""
    op_name, left, right = obs
    return bool(_BY_NAME[str(op_name)](values.decode(left), values.decode(right)))

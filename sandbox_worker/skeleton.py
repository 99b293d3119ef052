"""Assert skeletons: the nodes a plan is made of, and their evaluation on the trusted side.

A skeleton is evaluated here over plain data: `Const` values, `Op` operators from safe_ops,
`Hole` values fetched from the program's child, and `Skeleton` nodes (whole asserts that need
more than safe_ops: comprehensions, other builtins, standard modules, numpy), which the caller
evaluates in a fresh child that never loaded the program, brokering their holes. Split from
compare.py, which builds plans.
"""

from __future__ import annotations

import ast
import functools
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox_worker.safe_ops import CMPOPS, UNARY, safe_binop


@dataclass(frozen=True)
class Hole:
    """A sub-expression evaluated in the child; `clean` ones see pristine builtins.

    `params` are names bound by the test around it (comprehension or lambda variables of a
    `Skeleton`), whose plain values are sent with the request."""

    src: str
    clean: bool = False
    params: tuple[str, ...] = ()
    dispatch: str = ""  # a DISPATCH builtin the child applies when the value is an object,
    # or `op:<ast operator>:<l|r>`: that operator with the test value `operand` (its JSON
    # encoding) on the left or right, applied in the child when the value is an object
    operand: str = ""
    consts: str = ""  # JSON {name: encoded test value} the src reads (OBJOP_HOOK operands)


class Applied:
    """A hole's value with its `dispatch` builtin already applied by the child: the value was
    a program-defined object, whose own methods (`__len__`, `__str__`) decide."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass(frozen=True)
class Const:
    """A value known on the trusted side."""

    value: Any


@dataclass(frozen=True)
class Op:
    """An operator evaluated on the trusted side; `kind` picks the rule, `args` are nodes."""

    kind: str
    args: tuple[Any, ...]
    extra: Any = None


@dataclass(frozen=True)
class Skeleton:
    """A whole assert expression evaluated in a fresh child that never loaded the program,
    with pristine builtins and freshly imported modules (`imports`). The k-th program part
    of `src` reads `__codereward_hole__(k, {params})`: the caller asks the program's child
    for `holes[k]` and hands back its plain value."""

    src: str
    holes: tuple[Hole, ...]
    imports: tuple[str, ...] = ()


Node = Hole | Const | Op | Skeleton
Fetch = Callable[[Hole | Skeleton], Any]


@dataclass(frozen=True)
class Plan:
    """A test as steps: ("exec", src) runs in the child, ("assert", node) is judged here."""

    steps: tuple[tuple[str, Any], ...]
    local: bool  # holes run in a per-test namespace (the test has set-up statements)
    error: str | None = None  # the test itself does not parse
    # eager_holes(), computed once: plans are cached and asked for it several times per run
    eager: tuple[Hole, ...] | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "eager", _eager_holes(self))


def evaluate(node: Node, fetch: Fetch) -> Any:
    """Value of a node; holes come from `fetch` (the child), lazily and left to right."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Hole | Skeleton):
        return fetch(node)
    ev = functools.partial(evaluate, fetch=fetch)
    kind, args = node.kind, node.args
    if kind == "cmp":
        left = ev(args[0])
        for op, right_node in zip(node.extra, args[1:], strict=True):
            right = ev(right_node)
            if not CMPOPS[op](left, right):
                return False
            left = right
        return True
    if kind == "and":
        result: Any = True
        for a in args:
            result = ev(a)
            if not result:
                return result
        return result
    if kind == "or":
        result = False
        for a in args:
            result = ev(a)
            if result:
                return result
        return result
    if kind == "unary":
        return UNARY[node.extra](ev(args[0]))
    if kind == "bin":
        return safe_binop(node.extra, ev(args[0]), ev(args[1]))
    if kind == "if":
        return ev(args[1]) if ev(args[0]) else ev(args[2])
    if kind in ("tuple", "list", "set"):
        items = [ev(a) for a in args]
        return {"tuple": tuple, "list": list, "set": set}[kind](items)
    if kind == "dict":
        n = node.extra
        return dict(zip([ev(a) for a in args[:n]], [ev(a) for a in args[n:]], strict=True))
    if kind == "dispatch":  # a builtin on plain data here; on a program object, in its child
        value = ev(args[1])
        return value.value if isinstance(value, Applied) else args[0].value(value)
    if kind == "objop":  # `v * 2`: on plain data here; on a program object, in its child
        value, other = ev(args[0]), ev(args[1])
        if isinstance(value, Applied):
            return value.value
        op, side = node.extra
        return safe_binop(op, other, value) if side == "l" else safe_binop(op, value, other)
    if kind == "call":
        fn = ev(args[0])
        vals = [ev(a) for a in args[1:]]
        n_kw = len(node.extra)
        pos, kws = vals[:len(vals) - n_kw], vals[len(vals) - n_kw:]
        return fn(*pos, **dict(zip(node.extra, kws, strict=True)))
    raise ValueError(f"unknown node {kind}")


_SYMBOLS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


def _shown(value: Any) -> str:
    """A short repr; an int too long for repr() (over 4,300 digits) by its size."""
    try:
        return _SHORT.repr(value)
    except ValueError:
        bits = value.bit_length() if isinstance(value, int) else 0
        return f"<int of {bits} bits>" if bits else f"<{type(value).__name__}>"


def judge(node: Node, fetch: Fetch) -> tuple[bool, str | None]:
    """Truth of an assert skeleton, and for a failed single comparison the values seen."""
    if isinstance(node, Op) and node.kind == "cmp" and len(node.extra) == 1:
        left, right = evaluate(node.args[0], fetch), evaluate(node.args[1], fetch)
        if CMPOPS[node.extra[0]](left, right):
            return True, None
        sym = _SYMBOLS[node.extra[0]]
        return False, f"AssertionError: {_shown(left)} {sym} {_shown(right)} is false"
    return bool(evaluate(node, fetch)), None


def eager_holes(plan: Plan) -> list[Hole] | None:
    """Holes of a test in evaluation order, when they can all be asked for up front."""
    return None if plan.eager is None else list(plan.eager)


def _eager_holes(plan: Plan) -> tuple[Hole, ...] | None:
    """eager_holes() of a new plan.

    None when the test has set-up statements, short-circuits (and/or/if, chained
    comparisons), clean holes, or an assert with more than one hole: a second hole is
    usually the expected value (`f(1) == Point(1, 2)`), and a batch lets a program that
    reads the harness's memory see it before answering `f(1)`. Asked one at a time, in
    order, the program's value is in before the expected side is evaluated.
    """
    if plan.error or plan.local:
        return None
    holes: list[Hole] = []
    if any(_hole_count(step) > 1 for _, step in plan.steps):
        return None

    def walk(node: Node) -> bool:
        if isinstance(node, Hole):
            holes.append(node)
            return not node.clean
        if isinstance(node, Const):
            return True
        if isinstance(node, Skeleton):
            return False
        if node.kind in ("and", "or", "if") or (
                node.kind == "cmp" and len(node.extra) > 1):
            return False
        return all(walk(a) for a in node.args)

    return tuple(holes) if all(walk(step) for _, step in plan.steps) else None


def _hole_count(node: Node) -> int:
    return int(not isinstance(node, Const)) if not isinstance(node, Op) else sum(
        _hole_count(a) for a in node.args)

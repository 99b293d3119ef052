"""Split an assert into program-dependent holes and a skeleton judged by the trusted side.

`assert add(1, 2) == 3` becomes the skeleton `HOLE == 3` with the hole `add(1, 2)`: the child
evaluates only the hole and sends its value as plain data; the comparison, and every operator
that mixes a program value with a test constant (comparisons, arithmetic, `abs`, `round`,
`math.isclose`, `isinstance`, ...), runs here on that plain data. So the program never sees the
expected value, and no `__eq__`, `__sub__` or patched builtin of the program takes part.
First `unroll.flatten` turns `def check(candidate)` + `check(f)` and loops over constants into
top-level asserts. Statements left over (set-up lines, other loops, helpers) run in the child.
Asserts nested in them that are one comparison (`assert a == b`, `<`, `in`, ...) are
rewritten so the child sends both values as plain data and this side decides (a custom
`__eq__` cannot lie); other nested asserts are judged in the child. That is the weak path: a
program that takes over the harness in memory (frames, closures) can answer for any statement
the child runs, so only tests whose asserts stay top-level are unforgeable. An expected side
that needs the program (`Point(2, 3)`) is evaluated in its child: a program may learn it.
"""

from __future__ import annotations

import ast
import functools
import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox_worker import unroll
from sandbox_worker.observe import observe_asserts
from sandbox_worker.safe_ops import (
    CMPOPS,
    SAFE_CONSTS,
    SAFE_FUNCS,
    SAFE_TYPES,
    UNARY,
    safe_binop,
)


@dataclass(frozen=True)
class Hole:
    """A sub-expression evaluated in the child; `clean` ones see pristine builtins."""

    src: str
    clean: bool = False


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


Node = Hole | Const | Op


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


# calls the trusted side may evaluate even when every argument comes from the program,
# because they compare or mix the program value with test constants
_MIXING = {"isclose", "math.isclose", "isinstance", "type"}
_SCOPES = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


class _Planner:
    """Builds the node tree of one assert expression."""

    def __init__(self, local_names: set[str], shadowed: frozenset[str]) -> None:
        self.local, self.shadowed = local_names, shadowed
        # depends() per (node id, own_ok); the node is kept so that its id is never reused
        self._deps: dict[tuple[int, bool], tuple[ast.AST, bool]] = {}

    def _programs_own(self, node: ast.AST) -> bool:
        """A call of a builtin name the program redefines, on arguments that do not involve
        the program otherwise: the function under test (`sum(1, 2)` when the task is `sum`).
        Around program values (`abs(f(x) - 1)`) the name keeps meaning the real builtin."""
        if not (isinstance(node, ast.Call) and (_dotted(node.func) or ".").split(".")[0]
                in self.shadowed):
            return False
        args = [*node.args, *(k.value for k in node.keywords)]
        return not any(self.depends(a, own_ok=True) for a in args)

    def _trusted_name(self, dotted: str | None) -> bool:
        if dotted is None:
            return False
        return dotted.split(".")[0] not in self.local and (
            dotted in SAFE_FUNCS or dotted in SAFE_TYPES or dotted in SAFE_CONSTS)

    def depends(self, node: ast.AST, own_ok: bool = False) -> bool:
        """True when `node` may touch program state (any name not a trusted builtin);
        with `own_ok`, calls of the program's own builtin-named functions do not count."""
        key = (id(node), own_ok)  # plan() asks at every level: memoized, else quadratic
        if key not in self._deps:
            self._deps[key] = (node, self._depends(node, own_ok))
        return self._deps[key][1]

    def _depends(self, node: ast.AST, own_ok: bool) -> bool:
        if self._programs_own(node):
            return not own_ok
        if isinstance(node, ast.Attribute | ast.Name) and self._trusted_name(_dotted(node)):
            return False
        if isinstance(node, ast.Name):
            return True
        if isinstance(node, _SCOPES):  # only names free in a comprehension or lambda count
            bound = {n.id for n in ast.walk(node)
                     if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            if isinstance(node, ast.Lambda):
                bound |= {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
            return any(self.depends(n, own_ok) for n in ast.walk(node)
                       if isinstance(n, ast.Name) and n.id not in bound)
        return any(self.depends(child, own_ok) for child in ast.iter_child_nodes(node))

    def plan(self, node: ast.expr) -> Node:
        if not self.depends(node):
            return self._constant(node)
        rule = self._operator(node)
        return rule if rule is not None else Hole(ast.unparse(node))

    def _constant(self, node: ast.expr) -> Node:
        try:
            return Const(evaluate(self._operator(node) or _fail(), _no_holes))
        except Exception:
            return Hole(ast.unparse(node), clean=True)

    def _operator(self, node: ast.expr) -> Node | None:
        p = self.plan
        if isinstance(node, ast.Constant):
            return Const(node.value)
        if isinstance(node, ast.Compare):
            return Op("cmp", (p(node.left), *(p(c) for c in node.comparators)),
                      tuple(type(o) for o in node.ops))
        if isinstance(node, ast.BoolOp):
            return Op("and" if isinstance(node.op, ast.And) else "or",
                      tuple(p(v) for v in node.values))
        if isinstance(node, ast.UnaryOp):
            return Op("unary", (p(node.operand),), type(node.op))
        if isinstance(node, ast.BinOp):
            return Op("bin", (p(node.left), p(node.right)), type(node.op))
        if isinstance(node, ast.IfExp):
            return Op("if", (p(node.test), p(node.body), p(node.orelse)))
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            if any(isinstance(e, ast.Starred) for e in node.elts):
                return None
            return Op(type(node).__name__.lower(), tuple(p(e) for e in node.elts))
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                return None
            keys = tuple(p(k) for k in node.keys if k is not None)
            return Op("dict", (*keys, *(p(v) for v in node.values)), len(keys))
        dotted = _dotted(node)
        if dotted is not None and self._trusted_name(dotted):
            value = SAFE_CONSTS.get(dotted) or SAFE_TYPES.get(dotted) or SAFE_FUNCS[dotted]
            return Const(value)
        if isinstance(node, ast.Call):
            return self._call(node)
        return None

    def _call(self, node: ast.Call) -> Node | None:
        name = _dotted(node.func)
        if not self._trusted_name(name) or name not in SAFE_FUNCS or self._programs_own(node):
            return None
        args = [*node.args, *(k.value for k in node.keywords)]
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords):
            return None
        planned = [self.plan(a) for a in args]
        kw_nodes = dict(zip((k.arg for k in node.keywords), planned[len(node.args):],
                            strict=True))
        if not isinstance(kw_nodes.get("key", Const(None)), Const):
            return None  # a key function needs the program: the whole call runs there
        if name == "isinstance" and (len(planned) != 2 or not isinstance(planned[1], Const)):
            return None
        mixes = any(isinstance(x, Op) for x in planned) or any(
            isinstance(x, Const) for x in planned) or name in _MIXING
        if self.depends(node) and not mixes:
            return None  # e.g. len(f(x)): the whole call is one program hole
        if any(isinstance(x, Hole) and x.clean for x in planned):
            return None
        kw = tuple(k.arg for k in node.keywords)
        return Op("call", (Const(SAFE_FUNCS[str(name)]), *planned), kw)


def _fail() -> Node:
    raise ValueError("not evaluable here")


def _no_holes(hole: Hole) -> Any:
    raise ValueError("needs the program")


def evaluate(node: Node, fetch: Callable[[Hole], Any]) -> Any:
    """Value of a node; holes come from `fetch` (the child), lazily and left to right."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Hole):
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


def judge(node: Node, fetch: Callable[[Hole], Any]) -> tuple[bool, str | None]:
    """Truth of an assert skeleton, and for a failed single comparison the values seen."""
    if isinstance(node, Op) and node.kind == "cmp" and len(node.extra) == 1:
        left, right = evaluate(node.args[0], fetch), evaluate(node.args[1], fetch)
        if CMPOPS[node.extra[0]](left, right):
            return True, None
        sym = _SYMBOLS[node.extra[0]]
        return False, f"AssertionError: {_SHORT.repr(left)} {sym} {_SHORT.repr(right)} is false"
    return bool(evaluate(node, fetch)), None


def _assigned_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store | ast.Del):
            names.add(sub.id)
        elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(sub.name)
        elif isinstance(sub, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in sub.names
                         if not _binds_trusted(sub, a))
    return names


def _binds_trusted(stmt: ast.Import | ast.ImportFrom, alias: ast.alias) -> bool:
    """`import math` / `from math import isclose` bind what the trusted side means already."""
    if alias.asname is not None and alias.asname != alias.name:
        return False
    if isinstance(stmt, ast.Import):
        return alias.name in ("math",)
    return stmt.module == "math" and stmt.level == 0 and (
        f"math.{alias.name}" in SAFE_FUNCS and alias.name in SAFE_FUNCS)


_TRUSTED_ROOTS = sorted({n.split(".")[0] for n in (*SAFE_FUNCS, *SAFE_TYPES, *SAFE_CONSTS)})
_DEFINES = re.compile(
    r"^\s*(?:(?:async\s+)?def|class)\s+({0})\b|^({0})\s*[:=]|\bas\s+({0})\b"
    r"|^\s*from\s+\S+\s+import\b[^\n]*\b({0})\b".format("|".join(_TRUSTED_ROOTS)), re.M)


def shadowed_builtins(code: str) -> frozenset[str]:
    """Trusted builtin names a program (re)defines: a cheap scan, it never runs the code."""
    return frozenset(n for m in _DEFINES.finditer(code) for n in m.groups() if n)


def _trusted_value(planner: _Planner, node: ast.expr) -> Any:
    """Value of a program-independent expression, computed here (raises when it cannot be)."""
    if planner.depends(node):
        raise ValueError("needs the program")
    const = planner.plan(node)
    if not isinstance(const, Const):
        raise ValueError("not evaluable here")
    return const.value


# source that may bind a name (=, :=, op=, for, import, def, ...): only then are the tree's
# assigned names collected and check()/loops flattened (both walk the whole tree)
_MAY_BIND = re.compile(r"(?<![=!<>])=(?!=)|<<=|>>=|\b(?:for|del|import|def|class|as|with|except"
                       r"|global|nonlocal|match|case|type)\b")


@functools.lru_cache(maxsize=8192)
def make_plan(test: str, shadowed: frozenset[str] = frozenset()) -> Plan:
    """Plan of one test string (cached: RL batches repeat the same tests many times)."""
    try:
        tree = ast.parse(test, mode="exec")
        if _MAY_BIND.search(test) is None:  # nothing to inline, unroll or bind: plain asserts
            flat, planner = tree, _Planner(set(), shadowed)
        else:
            outer = _Planner(_assigned_names(tree), shadowed)
            flat = ast.Module(unroll.flatten(tree, functools.partial(_trusted_value, outer)), [])
            planner = _Planner(_assigned_names(flat), shadowed)
        steps: list[tuple[str, Any]] = []
        for stmt in flat.body:
            if isinstance(stmt, ast.Assert):
                steps.append(("assert", planner.plan(stmt.test)))
            else:
                steps.append(("exec", ast.unparse(observe_asserts(stmt))))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return Plan((), False, f"test does not parse: {type(exc).__name__}")
    return Plan(tuple(steps), any(kind == "exec" for kind, _ in steps))


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
        if node.kind in ("and", "or", "if") or (node.kind == "cmp" and len(node.extra) > 1):
            return False
        return all(walk(a) for a in node.args)

    return tuple(holes) if all(walk(step) for _, step in plan.steps) else None


def _hole_count(node: Node) -> int:
    return int(isinstance(node, Hole)) if not isinstance(node, Op) else sum(
        _hole_count(a) for a in node.args)

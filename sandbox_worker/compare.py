"""Split an assert into program-dependent holes and a skeleton judged by the trusted side.

`assert add(1, 2) == 3` becomes the skeleton `HOLE == 3` with the hole `add(1, 2)`: the child
evaluates only the hole and sends its value as plain data; the comparison, and every operator
that mixes a program value with a test constant (comparisons, arithmetic, `abs`, `round`,
`math.isclose`, `isinstance`, ...), runs here on that plain data. So the program never sees the
expected value, and no `__eq__`, `__sub__` or patched builtin of the program takes part.
Which names are the test's (trusted builtins and modules) and which the program's is the
rule in names.py. Asserts that need more than safe_ops (comprehensions over program values,
key functions, `re`, `numpy`, ...) become a `Skeleton`, evaluated in a clean child that never
loaded the program, its program parts brokered to the program's child (broker.py).
First `unroll.flatten` turns `def check(candidate)` + `check(f)` and loops over constants into
top-level asserts. Statements left over (set-up lines, other loops, helpers) run in the child.
Asserts nested in them that are one comparison (`assert a == b`, `<`, `in`, ...) are
rewritten so the child sends both values as plain data and this side decides (a custom
`__eq__` cannot lie); other nested asserts are judged in the child. That is the weak path: a
program that takes over the harness in memory (frames, closures) can answer for any statement
the child runs, so only tests whose asserts stay top-level are unforgeable. An expected side
that needs the program (`Point(2, 3)`) is evaluated in its child: a program may learn it.

Over 300 lines on purpose: the whole planner (what runs trusted, what is a hole) stays in one
module so the trust boundary can be reviewed in one read.
"""

from __future__ import annotations

import ast
import copy
import functools
import re
from typing import Any

from sandbox_worker import objops, unroll
from sandbox_worker.names import (
    BUILTIN_NAMES,
    TRUSTED_MODULES,
    Names,
    program_names,
    trusted_import,
)
from sandbox_worker.observe import observe_asserts
from sandbox_worker.safe_ops import SAFE_CONSTS, SAFE_FUNCS, SAFE_TYPES
from sandbox_worker.skeleton import (
    Applied,
    Const,
    Fetch,
    Hole,
    Node,
    Op,
    Plan,
    Skeleton,
    eager_holes,
    evaluate,
    judge,
)

__all__ = ["Applied", "Const", "Fetch", "Hole", "Names", "Node", "Op", "Plan", "Skeleton",
           "eager_holes", "evaluate", "judge", "make_plan", "program_names", "shadowed_builtins"]


_SCOPES = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)
HOLE_HOOK = "__codereward_hole__"  # how a Skeleton's source asks for its k-th hole
# builtins whose result on a program-defined object comes from that object's methods
DISPATCH = frozenset({"abs", "round", "len", "sorted", "set", "frozenset", "list", "tuple",
                      "dict", "sum", "min", "max", "all", "any", "bool", "int", "float", "str",
                      "complex"})
# operators a program object answers itself when every operand is a program part (rooted);
# == and != stay here (state equality: a program's __eq__ could say yes to anything)
_OBJECT_UNARY = (ast.USub, ast.UAdd, ast.Invert)
_OBJECT_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


def _scope_bound(node: ast.AST) -> set[str]:
    """Names a comprehension or lambda binds."""
    bound = {n.id for n in ast.walk(node)
             if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    if isinstance(node, ast.Lambda):
        bound |= {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    return bound


class _NeedsSkeleton(Exception):
    """The assert needs more than safe_ops: it is evaluated as a whole in a clean child."""


class _Planner:
    """Builds the node tree of one assert expression."""

    def __init__(self, local_names: set[str], names: Names) -> None:
        self.local, self.shadowed = local_names, names.shadowed
        self.imports = dict(names.imports)
        # depends() per (node id, own_ok); the node is kept so that its id is never reused
        self._deps: dict[tuple[int, bool], tuple[ast.AST, bool]] = {}

    def trusted(self, name: str) -> bool:
        """A name the test means as a trusted builtin or module (names.py has the rule)."""
        return name not in self.local and (
            name in self.imports or name in BUILTIN_NAMES or name in TRUSTED_MODULES)

    def _programs_own(self, node: ast.AST) -> bool:
        """A call of a trusted name the program redefines, on arguments that do not involve
        the program otherwise: the function under test (`sum(1, 2)` when the task is `sum`).
        Around program values (`abs(f(x) - 1)`) the name keeps meaning the trusted one."""
        if not (isinstance(node, ast.Call) and (_dotted(node.func) or ".").split(".")[0]
                in self.shadowed):
            return False
        args = [*node.args, *(k.value for k in node.keywords)]
        return not any(self.depends(a, own_ok=True) for a in args)

    def _safe(self, dotted: str | None) -> bool:
        """A trusted name that safe_ops evaluates in this process."""
        if dotted is None or not self.trusted(root := dotted.split(".")[0]):
            return False
        if root in self.imports and self.imports[root] not in (
                "import math", f"from math import {root}"):
            return False  # e.g. `from numpy import isclose`: not math.isclose
        return dotted in SAFE_FUNCS or dotted in SAFE_TYPES or dotted in SAFE_CONSTS

    def depends(self, node: ast.AST, own_ok: bool = False) -> bool:
        """True when `node` may touch program state (any name not a trusted one);
        with `own_ok`, calls of the program's own trusted-named functions do not count."""
        key = (id(node), own_ok)  # plan() asks at every level: memoized, else quadratic
        if key not in self._deps:
            self._deps[key] = (node, self._depends(node, own_ok))
        return self._deps[key][1]

    def _depends(self, node: ast.AST, own_ok: bool) -> bool:
        if self._programs_own(node):
            return not own_ok
        if isinstance(node, ast.Name):
            return not self.trusted(node.id)
        if isinstance(node, _SCOPES):  # only names free in a comprehension or lambda count
            bound = _scope_bound(node)
            return any(self.depends(n, own_ok) for n in ast.walk(node)
                       if isinstance(n, ast.Name) and n.id not in bound)
        return any(self.depends(child, own_ok) for child in ast.iter_child_nodes(node))

    def rooted(self, node: ast.AST, scope: frozenset[str] = frozenset()) -> bool:
        """A program part: a program name, or attribute, subscript and call chains on one
        (`Solution().twoSum(nums, 9)`, `f(x)[0]`), or a call of the program's own function;
        also an operator whose operands are all program parts (`V(1) + V(2)`, `-v`,
        `a < b`): on program objects only their own `__add__`/`__lt__` can say, and no test
        value reaches them (README "What a test may trust")."""
        chained = False
        while True:
            if self._programs_own(node):
                return True
            if isinstance(node, ast.Call):
                node, chained = node.func, True
            elif isinstance(node, ast.Attribute | ast.Subscript):
                node, chained = node.value, True
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, _OBJECT_UNARY):
                node, chained = node.operand, True
            elif isinstance(node, ast.BinOp):
                if chained and objops.mixed(self, node, scope) is not None:
                    return True  # `(v * 2).x`: the operator runs guarded (OBJOP_HOOK)
                return self.rooted(node.left, scope) and self.rooted(node.right, scope)
            elif (isinstance(node, ast.Compare) and len(node.ops) == 1
                  and isinstance(node.ops[0], _OBJECT_ORDER)):
                return self.rooted(node.left, scope) and self.rooted(node.comparators[0], scope)
            elif isinstance(node, ast.Name):
                return (isinstance(node.ctx, ast.Load) and node.id not in scope
                        and not self.trusted(node.id))
            else:
                return False

    def hole(self, node: ast.expr, scope: frozenset[str] = frozenset(),
             params: tuple[str, ...] = ()) -> Hole:
        """The program part `node` as a hole, its operators with test values guarded."""
        return objops.guarded_hole(self, node, scope, params)

    def plan(self, node: ast.expr) -> Node:
        if not self.depends(node):
            return self.constant(node)
        if self.rooted(node):
            return self.hole(node)
        rule = self._operator(node)
        if rule is None:
            raise _NeedsSkeleton
        return rule

    def constant(self, node: ast.expr) -> Node:
        """A program-independent part: computed here, or else in a clean child."""
        try:
            return Const(evaluate(self._operator(node) or _fail(), _no_holes))
        except Exception:
            return self.skeleton(node)

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
            left, right = p(node.left), p(node.right)
            return objops.object_operator(type(node.op), left, right) or \
                Op("bin", (left, right), type(node.op))
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
        if dotted is not None and self._safe(dotted):
            value = SAFE_CONSTS.get(dotted) or SAFE_TYPES.get(dotted) or SAFE_FUNCS[dotted]
            return Const(value)
        if isinstance(node, ast.Call):
            return self._call(node)
        return None

    def _call(self, node: ast.Call) -> Node | None:
        name = _dotted(node.func)
        if not self._safe(name) or name not in SAFE_FUNCS or self._programs_own(node):
            return None
        args = [*node.args, *(k.value for k in node.keywords)]
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords):
            return None
        planned = [self.plan(a) for a in args]
        kw_nodes = dict(zip((k.arg for k in node.keywords), planned[len(node.args):],
                            strict=True))
        if not isinstance(kw_nodes.get("key", Const(None)), Const):
            return None  # a key function that needs the program: a Skeleton
        if name == "isinstance" and len(planned) != 2:
            return None
        if any(isinstance(x, Skeleton) for x in planned):
            return None
        kw = tuple(k.arg for k in node.keywords)
        if name in DISPATCH and len(planned) == 1 and not kw and isinstance(planned[0], Hole):
            # on a program object (not plain data) the object's own methods decide: the
            # child applies the pristine builtin to it (skeleton.Applied)
            hole = Hole(planned[0].src, dispatch=str(name))
            return Op("dispatch", (Const(SAFE_FUNCS[str(name)]), hole))
        return Op("call", (Const(SAFE_FUNCS[str(name)]), *planned), kw)

    def skeleton(self, node: ast.expr) -> Skeleton:
        """The whole assert for a clean child, its program parts turned into hook calls."""
        maker = _ToSkeleton(self)
        tree = maker.visit(copy.deepcopy(node))
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        imports = [self.imports[n] for n in sorted(used) if n in self.imports]
        imports += [f"import {n}" for n in sorted(used) if n not in self.imports
                    and n in TRUSTED_MODULES and n not in BUILTIN_NAMES and self.trusted(n)]
        return Skeleton(ast.unparse(ast.fix_missing_locations(tree)), tuple(maker.holes),
                        tuple(imports))


class _ToSkeleton(ast.NodeTransformer):
    """Replaces each maximal program part by `HOLE_HOOK(k, {free test variables})`."""

    def __init__(self, planner: _Planner) -> None:
        self.planner, self.scope, self.holes = planner, frozenset[str](), list[Hole]()

    def visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.expr) and self.planner.rooted(node, self.scope):
            params = tuple(sorted({n.id for n in ast.walk(node)
                                   if isinstance(n, ast.Name)} & self.scope))
            self.holes.append(self.planner.hole(node, self.scope, params))
            env = ast.Dict([ast.Constant(p) for p in params],
                           [ast.Name(p, ast.Load()) for p in params])
            call = ast.Call(ast.Name(HOLE_HOOK, ast.Load()),
                            [ast.Constant(len(self.holes) - 1), env], [])
            return ast.copy_location(call, node)
        if isinstance(node, _SCOPES):
            saved, self.scope = self.scope, self.scope | _scope_bound(node)
            out = self.generic_visit(node)
            self.scope = saved
            return out
        return self.generic_visit(node)


def _fail() -> Node:
    raise ValueError("not evaluable here")


def _no_holes(hole: Hole | Skeleton) -> Any:
    raise ValueError("needs the program")


def _assigned_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store | ast.Del):
            names.add(sub.id)
        elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(sub.name)
        elif isinstance(sub, ast.Import | ast.ImportFrom):
            trusted = {n for n, _ in trusted_import(sub)}
            names.update(n for n in ((a.asname or a.name).split(".")[0] for a in sub.names)
                         if n not in trusted)
    return names


def _test_imports(tree: ast.AST) -> tuple[tuple[str, str], ...]:
    """Trusted imports a test makes itself (`import numpy as np` in its set-up)."""
    return tuple(pair for sub in ast.walk(tree) if isinstance(sub, ast.Import | ast.ImportFrom)
                 for pair in trusted_import(sub))


def shadowed_builtins(code: str) -> frozenset[str]:
    """Trusted names a program (re)defines (names.program_names; it never runs the code)."""
    return program_names(code).shadowed


def _trusted_value(planner: _Planner, node: ast.expr) -> Any:
    """Value of a program-independent expression, computed here (raises when it cannot be)."""
    if planner.depends(node):
        raise ValueError("needs the program")
    const = planner.plan(node)
    if not isinstance(const, Const):
        raise ValueError("not evaluable here")
    return const.value


def _library_assert(stmt: ast.stmt, planner: _Planner) -> ast.stmt:
    """`np.testing.assert_allclose(f(x), y)` as `assert <it> is None`: run as a statement in
    the child, a program could have replaced it with a no-op; as an assert it is judged in a
    clean child, where its AssertionError fails the test (broker.Refuted)."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return stmt
    root = func = stmt.value.func
    while isinstance(root, ast.Attribute):
        root = root.value
    last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if isinstance(func, ast.Name) and " import " in planner.imports.get(func.id, ""):
        last = planner.imports[func.id].split(" import ")[1].split(" as ")[0]  # its real name
    if not (isinstance(root, ast.Name) and last.startswith("assert")
            and planner.trusted(root.id)):
        return stmt
    return ast.copy_location(ast.Assert(test=ast.Compare(
        left=stmt.value, ops=[ast.Is()], comparators=[ast.Constant(None)])), stmt)


# source that may bind a name (=, :=, op=, for, import, def, ...): only then are the tree's
# assigned names collected and check()/loops flattened (both walk the whole tree)
_MAY_BIND = re.compile(r"(?<![=!<>])=(?!=)|<<=|>>=|\b(?:for|del|import|def|class|as|with|except"
                       r"|global|nonlocal|match|case|type)\b")


@functools.lru_cache(maxsize=8192)
def make_plan(test: str, names: Names | frozenset[str] = Names()) -> Plan:
    """Plan of one test string (cached: RL batches repeat the same tests many times).
    `names` is names.program_names(code), best restricted to the test's names."""
    if not isinstance(names, Names):
        names = Names(shadowed=frozenset(names))
    try:
        tree = ast.parse(test, mode="exec")
        if _MAY_BIND.search(test) is None:  # nothing to inline, unroll or bind: plain asserts
            flat, planner = tree, _Planner(set(), names)
        else:
            names = names.merged(_test_imports(tree))
            outer = _Planner(_assigned_names(tree), names)
            flat = ast.Module(unroll.flatten(tree, functools.partial(_trusted_value, outer)), [])
            planner = _Planner(_assigned_names(flat), names)
        steps: list[tuple[str, Any]] = []
        for stmt in flat.body:
            stmt = _library_assert(stmt, planner)
            if isinstance(stmt, ast.Assert):
                try:
                    steps.append(("assert", planner.plan(stmt.test)))
                except _NeedsSkeleton:
                    steps.append(("assert", planner.skeleton(stmt.test)))
            else:
                steps.append(("exec", ast.unparse(observe_asserts(stmt))))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return Plan((), False, f"test does not parse: {type(exc).__name__}")
    return Plan(tuple(steps), any(kind == "exec" for kind, _ in steps))

"""`unittest.mock.patch` in test modules, as start/stop calls around the test's own statements.

KodCode-style tests feed `input()` and read `print` through `patch('builtins.input', ...)` and
`patch('sys.stdout', new_callable=io.StringIO)`, as a `with` block or as a decorator. A `with`
block would put the test's asserts inside a statement the child runs (the weak path, README
"What a test may trust"), so at the top level of a test body

    with patch(target, ...) as m:
        <body>

becomes `__patch_k = patch(target, ...)`, `m = __patch_k.start()`, `<body>`, then a stop of
`__patch_k`, and the body's asserts stay top-level, judged on the trusted side. A decorator
patch is started before the test's other set-up and stopped after its body; it gives the
test a positional argument (its first parameters, the decorator nearest the def first, as
pytest and unittest pass them) unless it is given `new`, or is `patch.dict`. A test that
stops early leaves the stop to the next test's reset (pytest_builtins.py). A mock's assert
methods become asserts over its calls (`mock_assert`), judged trusted-side.
"""

from __future__ import annotations

import ast

from sandbox_worker.kinds.fixtures import PREFIX

_ROOTS = ("patch", "mock.patch", "unittest.mock.patch")
_KINDS = ("", ".object", ".dict")
PATCHERS = frozenset(root + kind for root in _ROOTS for kind in _KINDS)
_NEW_POSITION = {"": 1, ".object": 2}  # where a positional `new` goes; .dict passes none


def is_patch(node: ast.expr) -> bool:
    """`patch(...)`, `mock.patch.object(...)`, `patch.dict(...)` and their spellings."""
    return isinstance(node, ast.Call) and ast.unparse(node.func) in PATCHERS


def used(tree: ast.Module) -> bool:
    """True when the module calls a patcher or a mock's assert method anywhere."""
    return any(is_patch(node) or (isinstance(node.func, ast.Attribute) and
                                  node.func.attr in MOCK_ASSERTS)
               for node in ast.walk(tree) if isinstance(node, ast.Call))


# A mock's assert methods would decide in the child, where a program can replace them
# (`NonCallableMock.assert_called_once_with = lambda *a, **k: None`). They become asserts
# over the mock's calls as plain data, `[(args, kwargs), ...]`, judged trusted-side.
MOCK_ASSERTS = frozenset({"assert_called", "assert_called_once", "assert_not_called",
                          "assert_called_with", "assert_called_once_with", "assert_any_call",
                          "assert_has_calls"})
_CALLS = f"{PREFIX}calls"  # pytest_builtins: a mock's call_args_list as (args, kwargs) pairs
_TEMPLATES = {"assert_called": "len(C) >= 1", "assert_called_once": "len(C) == 1",
              "assert_not_called": "C == []", "assert_called_with": "C[-1:] == [E]",
              "assert_called_once_with": "C == [E]", "assert_any_call": "E in C"}


def _expected(call: ast.Call) -> ast.expr:
    """`(args, kwargs)` of a call, as the test wrote them."""
    return ast.Tuple(elts=[ast.Tuple(elts=list(call.args), ctx=ast.Load()),
                           ast.Dict(keys=[None if k.arg is None else ast.Constant(k.arg)
                                          for k in call.keywords],
                                    values=[k.value for k in call.keywords])], ctx=ast.Load())


def _call_list(node: ast.expr) -> list[ast.expr] | None:
    """`[call(1), mock.call(2)]` as expected pairs; None for anything else."""
    if not isinstance(node, ast.List | ast.Tuple):
        return None
    out = []
    for elt in node.elts:
        if not (isinstance(elt, ast.Call) and ast.unparse(elt.func) in (
                "call", "mock.call", "unittest.mock.call")):
            return None
        out.append(_expected(elt))
    return out


def mock_assert(call: ast.Call) -> ast.stmt | None:
    """The trusted-side assert a mock assert method means, or None for other calls (and
    for `assert_has_calls` with anything but a literal list of `call(...)`)."""
    if not isinstance(call.func, ast.Attribute) or call.func.attr not in MOCK_ASSERTS:
        return None
    calls = ast.Call(func=ast.Name(id=_CALLS, ctx=ast.Load()), args=[call.func.value],
                     keywords=[])
    if call.func.attr == "assert_has_calls":
        wanted = _call_list(call.args[0]) if call.args else None
        any_order = next((k.value for k in call.keywords if k.arg == "any_order"),
                         call.args[1] if len(call.args) > 1 else ast.Constant(False))
        if wanted is None or not isinstance(any_order, ast.Constant):
            return None
        text = ("all(e in C for e in L)" if any_order.value else
                "any(C[i:i + N] == L for i in range(len(C) - N + 1))")
        test = ast.parse(text.replace("N", str(len(wanted))), mode="eval").body
        names = {"C": calls, "L": ast.List(elts=wanted, ctx=ast.Load())}
    else:
        test = ast.parse(_TEMPLATES[call.func.attr], mode="eval").body
        names = {"C": calls, "E": _expected(call)}
    return ast.Assert(test=_Fill(names).visit(test))


class _Fill(ast.NodeTransformer):
    def __init__(self, names: dict[str, ast.expr]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.names.get(node.id, node)


def passes_mock(call: ast.Call) -> bool:
    """Whether a decorator patch gives the test an argument (no `new`, not patch.dict)."""
    kind = ast.unparse(call.func).removeprefix("unittest.").removeprefix("mock.")
    kind = kind.removeprefix("patch")
    if kind not in _NEW_POSITION:
        return False
    return len(call.args) <= _NEW_POSITION[kind] and all(k.arg != "new" for k in call.keywords)


class Counter:
    """Fresh names for the patchers of one module."""

    def __init__(self) -> None:
        self.n = 0

    def name(self) -> str:
        self.n += 1
        return f"{PREFIX}patch_{self.n}"


def _started(call: ast.expr, target: ast.expr | None, names: Counter
             ) -> tuple[list[ast.stmt], ast.stmt]:
    """(start statements, stop statement) for one patcher."""
    name = names.name()
    start: ast.expr = ast.Call(func=ast.Attribute(value=ast.Name(id=name, ctx=ast.Load()),
                                                  attr="start", ctx=ast.Load()),
                               args=[], keywords=[])
    stmts: list[ast.stmt] = [ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())],
                                        value=call, lineno=0)]
    stmts.append(ast.Assign(targets=[target], value=start, lineno=0) if target is not None
                 else ast.Expr(start))
    stmts += ast.parse(f"{PREFIX}on_reset({name}.stop)").body
    return stmts, ast.parse(f"{PREFIX}undo({name}.stop)").body[0]


def flatten_with(node: ast.With, names: Counter) -> list[ast.stmt] | None:
    """A `with` whose every item is a patcher, as start / body / stop; None otherwise."""
    if not node.items or not all(is_patch(item.context_expr) for item in node.items):
        return None
    setup: list[ast.stmt] = []
    stops: list[ast.stmt] = []
    for item in node.items:
        start, stop = _started(item.context_expr, item.optional_vars, names)
        setup += start
        stops.insert(0, stop)
    return [*setup, *node.body, *stops]


def from_decorators(decorators: list[ast.expr], params: list[str], names: Counter
                    ) -> tuple[list[ast.stmt], list[ast.stmt], int]:
    """(set-up, tear-down, parameters used) for a test's decorator patches, which must
    all be patcher calls; the mocks bind the first `params`, nearest decorator first."""
    setup: list[ast.stmt] = []
    teardown: list[ast.stmt] = []
    used_params = 0
    for dec in reversed(decorators):
        assert isinstance(dec, ast.Call)
        target = None
        if passes_mock(dec):
            if used_params >= len(params):
                raise ValueError("a patch decorator has no parameter to take its mock")
            target = ast.Name(id=params[used_params], ctx=ast.Store())
            used_params += 1
        start, stop = _started(dec, target, names)
        setup += start
        teardown.insert(0, stop)
    return setup, teardown, used_params


def split(decorators: list[ast.expr]) -> tuple[list[ast.expr], list[ast.expr]]:
    """(patch decorators, the others), each in their order."""
    patches = [d for d in decorators if is_patch(d)]
    return patches, [d for d in decorators if not is_patch(d)]


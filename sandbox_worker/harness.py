"""Runs inside the sandboxed child: loads the program once, then answers the supervisor's requests.

The child never sees a whole test: the trusted supervisor sends only the sub-expressions that
need the program ("holes", e.g. `add(1, 2)`) and compares the returned plain values itself.
Every request carries a fresh nonce, so nothing written before a request can answer it.
"""

from __future__ import annotations

import builtins
import functools
import operator
import sys
import types
from collections.abc import Iterable
from typing import Any

from sandbox_worker import isolation, values, wire
from sandbox_worker.kinds import stdio_child

ERROR_CHARS = 300  # longest error text sent back; the supervisor cuts again
MAX_REQUEST_BYTES = 64 * 1024 * 1024  # program code + tests are far below this

# Captured before any program runs: "clean" holes (program-independent expressions the
# supervisor could not evaluate itself) see these builtins, not ones a program patched.
_CLEAN_BUILTINS = dict(builtins.__dict__)
_REAL_IMPORT = builtins.__import__
# Test statements the child runs (set-up lines, loops it cannot unroll) import these as copies
# made before the program loads: a program that replaces `sys.modules['math']` or patches
# `math.isclose` in place does not change what a test's `import math` gets. (Only their
# top-level names: a program can still patch a Python module's internals or classes; such
# statements are the weak path, see README "What a test may trust".)
_SNAPSHOT = ("math", "cmath", "operator", "itertools", "functools", "collections", "re",
             "string", "heapq", "bisect", "statistics", "fractions", "decimal", "copy",
             "warnings")


def _copies() -> dict[str, types.ModuleType]:
    out = {}
    for name in _SNAPSHOT:
        try:
            module = _REAL_IMPORT(name)
        except ImportError:
            continue
        twin = types.ModuleType(name)
        twin.__dict__.update(module.__dict__)
        out[name] = twin
    return out


_PRISTINE_MODULES = _copies()


def _pristine_import(name: str, globals: Any = None, locals: Any = None,
                     fromlist: Any = (), level: int = 0) -> Any:
    if level == 0 and name in _PRISTINE_MODULES:
        return _PRISTINE_MODULES[name]
    return _REAL_IMPORT(name, globals, locals, fromlist, level)


_TEST_BUILTINS = {**_CLEAN_BUILTINS, "__import__": _pristine_import}


def describe(exc: BaseException) -> str:
    """`Type: message`, cut to ERROR_CHARS; never raises."""
    try:
        name = type(exc).__name__
        text = str(exc)
    except BaseException:
        return "error (unprintable exception)"
    out = f"{name}: {text}" if text else str(name)
    return out[:ERROR_CHARS]


# Our modules, listed by the zygote before it forks (hide_later); None: scan sys.modules.
_OWN_MODULES: tuple[str, ...] | None = None


def hide_later(names: Iterable[str]) -> None:
    """Set the module names each child drops from sys.modules before loading its program:
    a scan of sys.modules in every child touches (and so copies) every page of module names."""
    global _OWN_MODULES
    _OWN_MODULES = tuple(names)


def _load(rfd: int, wfd: int) -> dict[str, Any] | None:
    msg = wire.recv(rfd, max_bytes=MAX_REQUEST_BYTES)
    if msg.get("kind") == "stdio":  # a whole program per case, not a loaded module
        stdio_child.serve(rfd, wfd, msg)
        return None
    isolation.set_job_limits(int(msg["memory_mb"]), int(msg["cpu_s"]))
    own = _OWN_MODULES
    if own is None:
        own = tuple(m for m in sys.modules if m.split(".")[0] == "sandbox_worker")
    for name in own:
        sys.modules.pop(name, None)  # the program cannot import the harness (its files are hidden)
    try:
        compiled = compile(msg["code"], "<program>", "exec")
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
        wire.send(wfd, {"t": "syntax", "e": describe(exc)})
        return None
    module = types.ModuleType("__solution__")  # a real module: dataclasses, pickle need one
    sys.modules["__solution__"] = module
    glb: dict[str, Any] = module.__dict__
    try:
        exec(compiled, glb)
    except BaseException as exc:  # module-level code may raise anything, SystemExit included
        wire.send(wfd, {"t": "load", "e": describe(exc)})
        return None
    wire.send(wfd, {"t": "ok"})
    return glb


compare_hook = "__codereward_compare__"  # observe.OBSERVE (not imported: keeps the child small)
rfd_wfd = [-1, -1]  # the child's request and answer fds, set by serve()


def _observer(rfd: int, wfd: int) -> Any:
    send, recv, encode = wire.send, wire.recv, values.encode

    def observe(op: str, left: object, right: object) -> None:
        """Send both sides of `left OP right`; the supervisor says whether it holds."""
        send(wfd, {"obs": [op, encode(left), encode(right)]})
        verdict = recv(rfd, max_bytes=1 << 16)
        if "e" in verdict:
            raise TypeError(str(verdict["e"]))
        if not verdict.get("v"):
            raise AssertionError
    return observe


hole_hook = "__codereward_hole__"  # compare.HOLE_HOOK
objop_hook = "__codereward_objop__"  # objops.OBJOP_HOOK


class HoleRaised(BaseException):
    """A program part of a skeleton raised in the program's child (BaseException: nothing
    in the test's expression may catch it)."""


def _hole_asker(rfd: int, wfd: int) -> Any:
    send, recv, encode, decode = wire.send, wire.recv, values.encode, values.decode

    def ask(k: int, env: dict[str, Any]) -> Any:
        """Value of the skeleton's k-th program part, evaluated in the program's child."""
        send(wfd, {"hole": k, "env": {name: encode(v) for name, v in env.items()}})
        reply = recv(rfd, max_bytes=MAX_REQUEST_BYTES)
        if "e" in reply:
            raise HoleRaised(str(reply["e"]))
        return _revive(decode(reply["v"]))
    return ask


def _revive(value: Any) -> Any:
    """A numpy array stand-in becomes an array again, also inside lists, tuples and dicts
    (only in a clean child, for the test's own numpy calls: `np.allclose(f(x), y)`)."""
    if isinstance(value, values.Obj) and value.cls == "numpy.ndarray":
        import numpy
        return numpy.array(value.fields.get("tolist"))
    if isinstance(value, list | tuple):  # `np.testing.assert_equal((a, b), ...)`: arrays inside
        items = [_revive(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: _revive(v) for k, v in value.items()}
    return value


def _objecty(enc: Any) -> bool:
    """An encoded program-defined object (not a numpy array), or a list/tuple/set of them."""
    if not isinstance(enc, list) or not enc:
        return False
    if enc[0] == "x" or (enc[0] == "o" and enc[1] != "numpy.ndarray"):
        return True
    return enc[0] in ("l", "t", "s", "f") and any(_objecty(e) for e in enc[1:])


# operators as they were before any program ran (a program may patch the operator module)
_OPERATORS = {name: getattr(operator, fn) for name, fn in (
    ("Add", "add"), ("Sub", "sub"), ("Mult", "mul"), ("Div", "truediv"),
    ("FloorDiv", "floordiv"), ("Mod", "mod"), ("Pow", "pow"), ("MatMult", "matmul"),
    ("LShift", "lshift"), ("RShift", "rshift"), ("BitAnd", "and_"), ("BitOr", "or_"),
    ("BitXor", "xor"))}


def _applied(name: str, value: Any, operand: Any) -> Any:
    """A dispatch on a program object: the builtin `name` (`len`), or `op:Mult:r`, the
    operator with the test's value `operand` on the right (`v * 2`) or left (`2 * v`)."""
    if not name.startswith("op:"):
        return _CLEAN_BUILTINS[name](value)
    _, op, side = name.split(":")
    return _objop(op, side, value, values.decode(operand))


def _program_object(enc: Any) -> bool:
    return isinstance(enc, list) and len(enc) > 1 and enc[0] == "o" and enc[1] != "numpy.ndarray"


def _objop(op: str, side: str, value: Any, other: Any) -> Any:
    """`value OP other` (side "r") or `other OP value` ("l"), `other` the test's value. A
    program object's own operator decides, and it must answer with a program object: a
    plain answer (`A() - 4.0` giving 0) would let it decide `abs(f(x) - y) < 1e-9` after
    seeing the expected y. Anything else is first reduced to its plain items (values.py),
    so a subclass of a builtin lies with no `__mul__` of its own."""
    enc = values.encode(value)
    if not _program_object(enc):
        value = values.decode(enc)
        fn = _OPERATORS[op]
        return fn(other, value) if side == "l" else fn(value, other)
    fn = _OPERATORS[op]
    out = fn(other, value) if side == "l" else fn(value, other)
    if not _program_object(values.encode(out)):
        raise TypeError(f"operator {op} of a program object with a test value gave "
                        f"{type(out).__name__}, not a program object: not used, since the "
                        "object saw the test value (maybe the expected answer)")
    return out


@functools.lru_cache(maxsize=512)
def _compiled(src: str, mode: str) -> types.CodeType:
    """Test statements and holes, compiled once per child: a module's set-up lines (its
    fixtures, the builtin ones) come again before each of its tests."""
    return compile(src, "<test>", mode)


def _scope(req: dict[str, Any], glb: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    if req.get("hook"):  # a skeleton, in a child that never loaded a program
        scope: dict[str, Any] = {"__builtins__": dict(_CLEAN_BUILTINS),
                                 hole_hook: _hole_asker(rfd_wfd[0], rfd_wfd[1])}
        for stmt in req.get("imports", []):
            exec(compile(stmt, "<imports>", "exec"), scope)
        return scope
    if req.get("clean"):
        return {"__builtins__": dict(_CLEAN_BUILTINS)}
    scope = local if req.get("ns") == "l" else glb
    env = req.get("env")
    if env:  # a skeleton's comprehension variables and guarded operators' test values
        scope = {**scope, **{str(k): values.decode(v) for k, v in env.items()},
                 objop_hook: _objop}
    return scope


def _answer(req: dict[str, Any], glb: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    nonce = req["n"]
    try:
        scope = _scope(req, glb, local)
        if req["op"] == "exec":
            scope[compare_hook] = _observer(rfd_wfd[0], rfd_wfd[1])
            scope["__builtins__"] = dict(_TEST_BUILTINS)  # the program's functions keep theirs
            exec(_compiled(str(req["src"]), "exec"), scope)
            return {"n": nonce, "ok": True}
        value = eval(_compiled(str(req["src"]), "eval"), scope)
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
        encoded = values.encode(value)
        name = req.get("d")
        if name and _objecty(encoded):  # `len(obj)`: the object's own __len__ decides
            return {"n": nonce, "ok": True, "d": 1, "v": values.encode(_applied(
                str(name), value, req.get("c")))}
        return {"n": nonce, "ok": True, "v": encoded}
    except BaseException as exc:
        return {"n": nonce, "ok": False, "x": type(exc).__name__[:80], "e": describe(exc)}


def _reply(wfd: int, nonce: object, answer: dict[str, Any]) -> None:
    try:
        wire.send(wfd, answer)
    except (ValueError, OverflowError, RecursionError, TypeError, MemoryError) as exc:
        wire.send(wfd, {"n": nonce, "ok": False, "x": "ValueError",
                        "e": f"result cannot be sent: {describe(exc)}"})


def serve(rfd: int, wfd: int, *, _recv: Any = wire.recv, _answer: Any = _answer,
          _reply: Any = _reply, _error: type[Exception] = wire.WireError) -> None:
    """Load the program from the first frame, then answer eval/exec requests until EOF.

    A "batch" request carries many eval requests (tests the supervisor can judge without
    short-circuits); they are answered one frame each, in order. The loop holds its helpers
    as bound defaults, so a program that patches module attributes does not change it.
    """
    rfd_wfd[:] = [rfd, wfd]
    glb = _load(rfd, wfd)
    if glb is None:
        return
    test_index, local = -1, glb
    while True:
        try:
            req = _recv(rfd, max_bytes=MAX_REQUEST_BYTES)
        except _error:
            return
        for item in req["items"] if req.get("op") == "batch" else [req]:
            if item.get("t") != test_index:  # a fresh namespace per multi-statement test
                test_index, local = item.get("t"), dict(glb)
            _reply(wfd, item.get("n"), _answer(item, glb, local))

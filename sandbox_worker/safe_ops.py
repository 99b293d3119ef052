"""Operators and builtins the trusted side applies to plain data, with size guards."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from sandbox_worker import values

MAX_SEQ = 2_000_000  # longest sequence the trusted side builds or walks (= values.MAX_NODES:
# a 20-byte `range` answer must not make the service build a 10M-item list, ~400 MB)
MAX_INT_BITS = 1_000_000  # biggest int the trusted side computes
MAX_INT_WORK = 10**11  # bits(a) * bits(b) above which int *, //, % are refused (~0.3 s)
_BIG_INT_OPS = (ast.Mult, ast.FloorDiv, ast.Mod)
_WIDE_FORMAT = re.compile(r"%[-#0 +]*(?:\*|\d{6})|%[^a-zA-Z%]*\.(?:\*|\d{6})")


def _guard_len(x: Any) -> Any:
    try:
        n = len(x)
    except TypeError:
        return x
    if n > MAX_SEQ:
        raise ValueError(f"sequence of {n} items too large")
    return x


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*(_guard_len(a) for a in args), **kwargs)
    return call


def _isinstance(value: Any, cls: Any) -> bool:
    """isinstance, where a program class (a decoded stand-in) matches objects of that class."""
    if isinstance(cls, tuple):
        return any(_isinstance(value, c) for c in cls)
    if isinstance(cls, values.Obj) and cls.cls.startswith("class "):
        name = cls.cls[len("class "):]
        return isinstance(value, values.Obj) and value.cls in (name, f"enum {name}")
    return isinstance(value, cls)


_PLAIN_FUNCS: dict[str, Callable[..., Any]] = {
        "abs": abs, "round": round, "len": len, "sorted": sorted, "set": set,
        "frozenset": frozenset, "list": list, "tuple": tuple, "dict": dict, "sum": sum,
        "min": min, "max": max, "all": all, "any": any, "bool": bool, "int": int,
        "float": float, "str": str, "range": range, "isinstance": _isinstance, "type": type,
        "complex": complex, "isclose": math.isclose, "math.isclose": math.isclose,
        "math.sqrt": math.sqrt, "math.fabs": math.fabs, "math.floor": math.floor,
        "math.ceil": math.ceil, "math.isnan": math.isnan, "math.isinf": math.isinf,
}
SAFE_FUNCS = {name: _guarded(fn) for name, fn in _PLAIN_FUNCS.items()}
SAFE_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list,
              "tuple": tuple, "dict": dict, "set": set, "frozenset": frozenset,
              "bytes": bytes, "complex": complex}
SAFE_CONSTS = {"math.pi": math.pi, "math.e": math.e, "math.inf": math.inf,
               "math.nan": math.nan, "math.tau": math.tau}

BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
}
CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_,
    ast.IsNot: operator.is_not, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
}


def refuse_objects(symbol: str, a: Any, b: Any) -> None:
    """A program object beside a test value: its own operator would see the test value
    (maybe the expected answer), and this side cannot apply it. Say so clearly."""
    for obj in (a, b):
        if isinstance(obj, values.Obj) and obj.cls != "numpy.ndarray":
            raise TypeError(f"{symbol} on a program object ({obj!r}) and a test value is not "
                            "evaluated: the object's own method would see the test value")


def safe_binop(op: type[ast.operator], a: Any, b: Any) -> Any:
    """Binary operator with guards against results too big to build."""
    refuse_objects(f"operator {op.__name__}", a, b)
    if (op is ast.Pow and isinstance(a, int) and isinstance(b, int) and b > 0
            and max(1, a.bit_length()) * b > MAX_INT_BITS):
        raise OverflowError("power too large")
    if op is ast.LShift and isinstance(b, int) and b > MAX_INT_BITS:
        raise OverflowError("shift too large")
    if op in _BIG_INT_OPS and isinstance(a, int) and isinstance(b, int) and (
            max(1, a.bit_length()) * max(1, b.bit_length()) > MAX_INT_WORK):
        raise OverflowError("integer operation too large")
    if op is ast.Mult and (isinstance(a, int) or isinstance(b, int)):
        seq, n = (a, b) if isinstance(b, int) else (b, a)
        if not isinstance(seq, int) and isinstance(n, int) and _size(seq) * n > MAX_SEQ:
            raise OverflowError("repetition too large")  # str, bytes, bytearray, deque, ...
    if op is ast.Mod and isinstance(a, str | bytes) and _WIDE_FORMAT.search(
            a if isinstance(a, str) else a.decode("latin-1")):
        raise OverflowError("format width too large")  # '%0999999999d' % 1 is 1 GB
    return BINOPS[op](a, b)


def _size(x: Any) -> int:
    try:
        return len(x)
    except TypeError:
        return 0

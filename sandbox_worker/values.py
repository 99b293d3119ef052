"""Plain-data value transport: the child encodes a program's value, the trusted side decodes it.

The encoding is JSON with tags: str/int/float/bool/None stay JSON scalars; every other value is
a JSON array whose first item is a tag. Decoding builds only builtin values plus two inert
stand-ins (`Obj`, `Opaque`), so nothing a program defines ever runs on the trusted side.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import decimal
import enum
import fractions
import types
from typing import Any

MAX_NODES = 2_000_000  # values per encoded result; beyond: an opaque "too large" value
MAX_DEPTH = 200  # nesting levels; deeper parts become opaque
_BIG_INT_BITS = 12_000  # JSON ints above ~3600 digits travel as hex (int<->str digit limit)
_ITER_TYPES = (types.GeneratorType, map, filter, zip, enumerate, reversed)


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_NODES


def encode(value: object) -> Any:
    """Plain-data form of `value` (runs in the sandbox child, on the program's value)."""
    return _enc(value, 0, _Budget(), set())


def _enc(v: object, depth: int, budget: _Budget, path: set[int]) -> Any:
    budget.left -= 1
    if budget.left < 0:
        return ["x", "too large"]
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if t is float:
        return v
    if t is int:
        assert isinstance(v, int)
        return v if v.bit_length() < _BIG_INT_BITS else ["I", hex(v)]
    if depth > MAX_DEPTH:
        return ["x", "too deep"]
    if id(v) in path:
        return ["x", "cycle"]
    path.add(id(v))
    try:
        return _enc_compound(v, depth + 1, budget, path)
    finally:
        path.discard(id(v))


def _items(seq: Any, depth: int, budget: _Budget, path: set[int]) -> list[Any]:
    out = []
    for x in seq:  # stops at the budget: an endless generator must not hang the encoder
        out.append(_enc(x, depth, budget, path))
        if budget.left < 0:
            break
    return out


def _enc_compound(v: Any, d: int, b: _Budget, p: set[int]) -> Any:
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, enum.Enum) and not isinstance(v, int | str | float):
        return ["e", _qualname(type(v)), str(v.name)]
    if isinstance(v, int):
        return _enc(int.__index__(v), d, b, p)
    if isinstance(v, float):
        return float.__float__(v)
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, bytes):
        return ["b", bytes(v).hex()]
    if isinstance(v, bytearray):
        return ["B", bytes(v).hex()]
    if isinstance(v, complex):
        return ["c", v.real, v.imag]
    if isinstance(v, tuple):
        return ["t", *_items(tuple.__iter__(v), d, b, p)]
    if isinstance(v, list):
        return ["l", *_items(list.__iter__(v), d, b, p)]
    if isinstance(v, collections.deque):
        return ["q", *_items(v, d, b, p)]
    if isinstance(v, frozenset):
        return ["f", *_items(v, d, b, p)]
    if isinstance(v, set):
        return ["s", *_items(v, d, b, p)]
    if isinstance(v, dict):
        tag = "od" if isinstance(v, collections.OrderedDict) else "d"
        return [tag, *[[_enc(k, d, b, p), _enc(x, d, b, p)] for k, x in dict.items(v)]]
    if isinstance(v, range):
        return ["r", v.start, v.stop, v.step]
    if isinstance(v, decimal.Decimal):
        return ["D", str(v)]
    if isinstance(v, fractions.Fraction):
        return ["F", _enc(v.numerator, d, b, p), _enc(v.denominator, d, b, p)]
    if isinstance(v, datetime.timedelta):
        return ["td", v.days, v.seconds, v.microseconds]
    if isinstance(v, datetime.date | datetime.time):
        return ["dt", type(v).__name__, v.isoformat()]
    if isinstance(v, _ITER_TYPES):
        return ["g", *_items(v, d, b, p)]  # consumed here so the trusted side can list() it
    return _enc_object(v, d, b, p)


def _qualname(cls: type) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', '?')}"


def _enc_object(v: Any, d: int, b: _Budget, p: set[int]) -> Any:
    cls = type(v)
    if getattr(cls, "__module__", "") == "numpy":
        if hasattr(v, "tolist") and hasattr(v, "shape") and cls.__name__ == "ndarray":
            return ["o", "numpy.ndarray", ["d", ["tolist", _enc(v.tolist(), d, b, p)]], True]
        if hasattr(v, "item"):
            return _enc(v.item(), d, b, p)
    if isinstance(v, type):
        return ["T", _qualname(v)]
    if isinstance(v, types.FunctionType | types.ModuleType | types.BuiltinFunctionType):
        return ["x", cls.__name__]
    fields: dict[str, Any] = {}
    with contextlib.suppress(AttributeError, TypeError):
        fields.update(object.__getattribute__(v, "__dict__"))
    for klass in cls.__mro__:
        for name in getattr(klass, "__slots__", ()) or ():
            if isinstance(name, str) and name not in ("__dict__", "__weakref__"):
                with contextlib.suppress(AttributeError):
                    fields[name] = object.__getattribute__(v, name)
    if not fields and not hasattr(v, "__dict__"):
        return ["x", cls.__name__]
    try:
        truth = bool(v)
    except Exception:  # a broken __bool__ is the program's problem, not the harness's
        truth = True
    enc_fields = ["d", *[[k, _enc(x, d, b, p)] for k, x in sorted(fields.items())]]
    return ["o", _qualname(cls), enc_fields, truth]


class Obj:
    """Inert stand-in for a program object: equal only to the same class with equal state."""

    __slots__ = ("cls", "fields", "truth")

    def __init__(self, cls: str, fields: dict[Any, Any], truth: bool) -> None:
        self.cls, self.fields, self.truth = cls, fields, truth

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Obj) and self.cls == other.cls and self.fields == other.fields

    def __hash__(self) -> int:
        return hash(self.cls)

    def __bool__(self) -> bool:
        return self.truth

    def __repr__(self) -> str:
        return f"<{self.cls} object>"

    def _array(self) -> list[Any]:
        """The items of a numpy array stand-in; other objects have no length or items."""
        items = self.fields.get("tolist") if self.cls == "numpy.ndarray" else None
        if not isinstance(items, list):
            raise TypeError(f"object of type {self.cls!r} has no len() or items here")
        return items

    def __len__(self) -> int:
        return len(self._array())

    def __iter__(self) -> Any:
        return iter(self._array())


class Opaque:
    """A value that could not travel (function, cycle, too large): equal to nothing."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


class DecodeError(ValueError):
    """The child sent something that is not a valid encoded value."""


def decode(data: Any) -> Any:
    """Builtin value from its plain-data form (trusted side; never runs program code)."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise DecodeError("malformed value")
    tag, rest = data[0], data[1:]
    try:
        return _DECODERS[tag](rest)
    except KeyError as exc:
        raise DecodeError(f"unknown tag {tag!r}") from exc
    except DecodeError:
        raise
    except (TypeError, ValueError, IndexError, OverflowError, decimal.InvalidOperation) as exc:
        raise DecodeError(f"bad {tag!r} value: {type(exc).__name__}") from exc


def _dict_pairs(rest: list[Any]) -> list[tuple[Any, Any]]:
    return [(decode(k), decode(v)) for k, v in rest]


def _obj(rest: list[Any]) -> Obj:
    cls, fields, truth = rest
    if not isinstance(cls, str):
        raise DecodeError("bad class name")
    return Obj(cls, decode(fields), bool(truth))


def _dt(rest: list[Any]) -> object:
    kind, iso = rest
    types_: dict[str, Any] = {"date": datetime.date, "datetime": datetime.datetime,
                              "time": datetime.time}
    return types_[kind].fromisoformat(iso)


def _float(x: Any) -> float:
    if not isinstance(x, int | float):
        raise DecodeError("not a number")
    return float(x)


MAX_DECIMAL_EXP = 10_000  # |exponent| of a Decimal the trusted side accepts: int() of
# Decimal('1e999999999') would build a billion-digit int in the service


def _decimal(x: Any) -> decimal.Decimal:
    d = decimal.Decimal(str(x))
    if d.is_finite() and abs(d.adjusted()) > MAX_DECIMAL_EXP:
        raise DecodeError("Decimal exponent too large")
    return d


_BUILTIN_TYPES: dict[str, type] = {
    f"builtins.{t.__name__}": t for t in (int, float, str, bool, list, tuple, dict, set, frozenset,
                                          bytes, bytearray, complex, type(None), range, object)}

_DECODERS: dict[str, Any] = {
    "I": lambda r: int(r[0], 16),
    "b": lambda r: bytes.fromhex(r[0]),
    "B": lambda r: bytearray.fromhex(r[0]),
    "c": lambda r: complex(_float(r[0]), _float(r[1])),
    "t": lambda r: tuple(decode(x) for x in r),
    "l": lambda r: [decode(x) for x in r],
    "q": lambda r: collections.deque(decode(x) for x in r),
    "f": lambda r: frozenset(decode(x) for x in r),
    "s": lambda r: {decode(x) for x in r},
    "d": lambda r: dict(_dict_pairs(r)),
    "od": lambda r: collections.OrderedDict(_dict_pairs(r)),
    "r": lambda r: range(int(r[0]), int(r[1]), int(r[2])),
    "D": lambda r: _decimal(r[0]),
    "F": lambda r: fractions.Fraction(decode(r[0]), decode(r[1])),
    "td": lambda r: datetime.timedelta(days=int(r[0]), seconds=int(r[1]),
                                       microseconds=int(r[2])),
    "dt": _dt,
    "g": lambda r: iter([decode(x) for x in r]),
    "e": lambda r: Obj(f"enum {r[0]}", {"name": str(r[1])}, True),
    "o": _obj,
    "x": lambda r: Opaque(str(r[0])[:80]),
    "T": lambda r: _BUILTIN_TYPES.get(str(r[0])) or Obj(f"class {r[0]}", {}, True),
}


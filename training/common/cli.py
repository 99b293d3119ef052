"""`--key=value` overrides for a config dataclass (the one config of a training run)."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _convert(raw: str, typ: Any) -> Any:
    origin = typing.get_origin(typ)
    args = [a for a in typing.get_args(typ) if a is not type(None)]
    if origin is not None and args:  # X | None
        if raw.lower() in ("none", "null", ""):
            return None
        return _convert(raw, args[0])
    if typ is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SystemExit(f"not a boolean: {raw!r}")
    if typ in (int, float, str):
        return typ(raw)
    return json.loads(raw)


def parse_overrides(cls: type[T], argv: list[str], base: T | None = None) -> T:
    """Build `cls` from `--key=value` (or `--key value`, `--flag`) arguments."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if "-h" in argv or "--help" in argv:
        print(f"{cls.__doc__}\noptions (--key=value):")
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            default = getattr(base if base is not None else cls(), f.name)
            print(f"  --{f.name}={default!r}")
        raise SystemExit(0)
    values: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise SystemExit(f"unexpected argument {arg!r} (use --key=value)")
        key, eq, raw = arg[2:].partition("=")
        key = key.replace("-", "_")
        if key not in names:
            raise SystemExit(f"unknown option --{key}; known: {', '.join(sorted(names))}")
        if not eq:
            if hints[key] is bool:
                raw = "true"
            else:
                i += 1
                raw = argv[i]
        values[key] = _convert(raw, hints[key])
        i += 1
    start = base if base is not None else cls()
    return dataclasses.replace(start, **values)  # type: ignore[type-var]


def save_config(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True))


def load_config(cls: type[T], path: str | Path) -> T:
    data = json.loads(Path(path).read_text())
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})

"""Which names in a test are the test's own (trusted builtins and modules) and which the program's.

The rule ("What a test may trust", README): a name a test uses means the *trusted* object when
it is a builtin (`sorted`, `all`, ...), a standard module or numpy (`math`, `re`, `np` bound by
an `import numpy as np` of the program or the test), or a name that an import of such a module
binds (`from collections import Counter`). The trusted side evaluates those itself, or in a
fresh child that never loaded the program, on plain data. Every other name is the program's.
A program that *defines* (def, class, assignment) a trusted name shadows it only for calls
whose arguments do not involve the program otherwise (`sorted([3, 1])` when the task is to
write `sorted`); around program values (`sorted(f(x))`) the name keeps its trusted meaning.
Imports are read from the program's text (never by running it).
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
import sys
from dataclasses import dataclass

BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("_"))
TRUSTED_MODULES = frozenset(
    m for m in (*sys.stdlib_module_names, "numpy") if not m.startswith("_"))


@dataclass(frozen=True)
class Names:
    """What one program binds that a test might mean as trusted: hashable, for plan caches."""

    shadowed: frozenset[str] = frozenset()  # trusted names the program defines
    imports: tuple[tuple[str, str], ...] = ()  # (name, import statement) of trusted imports

    def restrict(self, used: frozenset[str]) -> Names:
        """Only the names a test uses (so tests share cached plans across programs)."""
        return Names(self.shadowed & used, tuple((n, s) for n, s in self.imports if n in used))

    def merged(self, other: tuple[tuple[str, str], ...]) -> Names:
        """With the test's own trusted imports added (they win over the program's)."""
        mine = {n: s for n, s in self.imports}
        mine.update(other)
        return Names(self.shadowed - set(mine), tuple(sorted(mine.items())))


def trusted_import(stmt: ast.Import | ast.ImportFrom) -> list[tuple[str, str]]:
    """(bound name, statement) for each name an import of a trusted module binds."""
    if isinstance(stmt, ast.ImportFrom):
        if stmt.level or not stmt.module or stmt.module.split(".")[0] not in TRUSTED_MODULES:
            return []
        return [(a.asname or a.name, f"from {stmt.module} import {a.name}"
                 + (f" as {a.asname}" if a.asname else "")) for a in stmt.names if a.name != "*"]
    out = []
    for a in stmt.names:
        if a.name.split(".")[0] in TRUSTED_MODULES:
            bound = a.asname or a.name.split(".")[0]
            out.append((bound, f"import {a.name}" + (f" as {a.asname}" if a.asname else "")))
    return out


def _bound(tree: ast.Module) -> tuple[set[str], dict[str, str]]:
    """Global names the program binds other than by trusted imports, and the trusted imports
    (function and class bodies bind locals: only their `global` declarations count)."""
    defined: set[str] = set()
    imports: dict[str, str] = {}
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found = trusted_import(node)
            imports.update(found)
            names = {(a.asname or a.name).split(".")[0] for a in node.names}
            defined |= names - {n for n, _ in found}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
            defined.update(n for sub in ast.walk(node) if isinstance(sub, ast.Global)
                           for n in sub.names)
            continue
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            defined.add(node.id)
        if not isinstance(node, ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))
    return defined, imports


@functools.lru_cache(maxsize=4096)
def program_names(code: str) -> Names:
    """Names context of a program (cached: GRPO groups repeat programs)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return Names()
    defined, imports = _bound(tree)
    trusted = BUILTIN_NAMES | TRUSTED_MODULES
    return Names(frozenset((defined & trusted) - set(imports)), tuple(sorted(imports.items())))


_IDENT = re.compile(r"[A-Za-z_]\w*")


@functools.lru_cache(maxsize=8192)
def test_names(test: str) -> frozenset[str]:
    """Every identifier a test's text may use (a superset: a cheap scan, no parse)."""
    return frozenset(_IDENT.findall(test))

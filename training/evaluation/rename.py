"""Local-variable renaming: a memorization control for held-out evaluation.

A pretrained code LM may have seen HumanEval's canonical solutions verbatim. Renaming every
local variable of a solution (never its parameters, globals or functions, so the prompt and
tests still fit) and re-rendering it with `ast.unparse` (comments dropped, layout
normalized) gives a program the model cannot have memorized token for token; mutants are then
made from that program. A reward that still ranks it first reads code, not its memory.
"""

from __future__ import annotations

import ast
import builtins

# plain names, as a person might have chosen them
NAMES = ("value", "item", "result", "total", "count", "current", "entry", "part", "piece",
         "elem", "node", "acc", "seen", "out", "tmp", "pos", "step", "cur", "prev", "word")


def _stored_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names bound in a function's body, minus every parameter name in it (its own, nested
    functions' and lambdas': a parameter is never renamed, so neither is a local it shadows)
    and global/nonlocal names."""
    params = {a.arg for a in ast.walk(fn) if isinstance(a, ast.arg)}
    declared: set[str] = set()
    stored: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Global | ast.Nonlocal):
            declared.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            stored.add(node.id)
    return stored - params - declared


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node


def rename_locals(source: str) -> str:
    """The program with each top-level function's locals renamed; unchanged if unparsable."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    taken |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    taken |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    taken |= set(dir(builtins))
    fresh = (f"{name}{k or ''}" for k in range(100) for name in NAMES)
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        mapping = {}
        for old in sorted(_stored_names(fn)):
            new = next(n for n in fresh if n not in taken)
            taken.add(new)
            mapping[old] = new
        _Renamer(mapping).visit(fn)
    return ast.unparse(tree) + "\n"

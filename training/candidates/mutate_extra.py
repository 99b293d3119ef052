"""More mutation operators, shaped like bugs LLMs write (`all_mutants(..., extra=True)`).

Wrong variable (another local of the same function), slice bounds off by one, a loop that
starts at 1, a sort in the wrong direction, and misplaced indentation: the statement after
a loop or `if` pulled into its body, or a body's last statement pushed out of it (visible
to a model only when its tokenizer keeps layout; see `model.add_code_layout`).
Kept apart from `mutate.py` so the held-out evaluation's candidates (made with the original
operators) stay comparable across versions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from training.candidates.edits import Edit, Offsets, segment

_BLOCKS = (ast.For, ast.While, ast.If)


def extra_edits(src: bytes, tree: ast.AST) -> Iterator[Edit]:
    """Every extra edit of a parsed program."""
    off = Offsets(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _wrong_names(src, off, node)
        elif isinstance(node, ast.Slice):
            for bound in (node.lower, node.upper):
                if bound is not None and not isinstance(bound, ast.Constant):
                    a, b = off.span(bound)
                    text = src[a:b].decode("utf-8")
                    yield Edit(a, b, f"{text} + 1", "slice")
                    yield Edit(a, b, f"{text} - 1", "slice")
        elif isinstance(node, ast.Call):
            yield from _call_edits(src, off, node)
        for body in (getattr(node, "body", None), getattr(node, "orelse", None)):
            if isinstance(body, list):
                yield from _indent_edits(src, off, body)


def _wrong_names(src: bytes, off: Offsets, fn: ast.FunctionDef | ast.AsyncFunctionDef
                 ) -> Iterator[Edit]:
    """A read of a local replaced by the next other local (args and assigned names)."""
    local = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
    local |= {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)
              and isinstance(n.ctx, ast.Store)}
    names = sorted(local)
    if len(names) < 2:
        return
    for n in ast.walk(fn):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in local:
            other = names[(names.index(n.id) + 1) % len(names)]
            a, b = off.span(n)
            yield Edit(a, b, other, "wrong_name")


def _call_edits(src: bytes, off: Offsets, node: ast.Call) -> Iterator[Edit]:
    name = node.func.id if isinstance(node.func, ast.Name) else (
        node.func.attr if isinstance(node.func, ast.Attribute) else "")
    if name == "range" and len(node.args) == 1:
        a, b = off.span(node.args[0])
        yield Edit(a, b, f"1, {segment(src, off, node.args[0])}", "range_start")
    if name in ("sorted", "sort") and not any(k.arg == "reverse" for k in node.keywords):
        a, b = off.span(node)
        text = src[a:b].decode("utf-8")
        close = text.rstrip().rfind(")")
        inner = text[:close].rstrip()
        sep = "" if inner.endswith("(") else ", "
        yield Edit(a, b, f"{inner}{sep}reverse=True{text[close:]}", "sort_order")


def _indent_edits(src: bytes, off: Offsets, body: list[ast.stmt]) -> Iterator[Edit]:
    """Next statement pulled into a block's body; a block's last statement pushed out."""
    for i, stmt in enumerate(body):
        if not isinstance(stmt, _BLOCKS) or stmt.orelse or len(stmt.body) < 1:
            continue
        step = stmt.body[0].col_offset - stmt.col_offset
        if step <= 0:
            continue
        if i + 1 < len(body):
            a, b = off.lines(body[i + 1], src)
            lines = src[a:b].decode("utf-8").splitlines(keepends=True)
            yield Edit(a, b, "".join(" " * step + ln if ln.strip() else ln for ln in lines),
                       "indent")
        last = stmt.body[-1]
        if len(stmt.body) >= 2:
            a, b = off.lines(last, src)
            lines = src[a:b].decode("utf-8").splitlines(keepends=True)
            if all(ln.startswith(" " * step) or not ln.strip() for ln in lines):
                yield Edit(a, b, "".join(ln[step:] if ln.strip() else ln for ln in lines),
                           "dedent")

"""Source edits shared by the mutation operators: a byte-range replacement and node offsets.

Its own module so that `mutate.py` and `mutate_extra.py` both build on it without importing
each other.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """Replace source bytes [start, end) with `text`; `kind` names the operator."""

    start: int
    end: int
    text: str
    kind: str


class Offsets:
    """(lineno, col) in UTF-8 bytes → absolute byte offsets in the source."""

    def __init__(self, src: bytes) -> None:
        self.starts = [0]
        for i, b in enumerate(src):
            if b == 0x0A:
                self.starts.append(i + 1)

    def span(self, node: ast.AST) -> tuple[int, int]:
        a = self.starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        b = self.starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return a, b

    def lines(self, node: ast.AST, src: bytes) -> tuple[int, int]:
        """Whole lines of a statement, newline included."""
        a = self.starts[node.lineno - 1]  # type: ignore[attr-defined]
        end_line = node.end_lineno  # type: ignore[attr-defined]
        b = self.starts[end_line] if end_line < len(self.starts) else len(src)
        return a, b


def segment(src: bytes, off: Offsets, node: ast.AST) -> str:
    """The source text of a node."""
    a, b = off.span(node)
    return src[a:b].decode("utf-8")

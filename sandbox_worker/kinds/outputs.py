"""Trusted comparison of a program's output with a case's expected output (stdio kind).

Modes, as the datasets judge them:
- tokens (default; CodeContests, TACO): whitespace-separated tokens equal, any spacing;
- lines (LiveCodeBench): lines equal after stripping each, trailing blank lines ignored;
- exact: byte-exact after decoding;
- float: tokens, where two numeric tokens are equal within `tol` (absolute or relative,
  the usual checker rule for real-valued answers); other tokens must be equal.
"""

from __future__ import annotations

import math

SHOW_CHARS = 80  # how much of either side a mismatch message quotes


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _number(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _close(got: str, want: str, tol: float) -> bool:
    if got == want:
        return True
    a, b = _number(got), _number(want)
    if a is None or b is None:
        return False
    return abs(a - b) <= tol or abs(a - b) <= tol * abs(b)


def _quote(text: str) -> str:
    text = text if len(text) <= SHOW_CHARS else text[:SHOW_CHARS] + "..."
    return repr(text)


def _first_difference(got: list[str], want: list[str], unit: str) -> str:
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"{unit} {i + 1}: expected {_quote(w)}, got {_quote(g)}"
    return f"expected {len(want)} {unit}s, got {len(got)}"


def mismatch(got: str, want: str, mode: str, tol: float = 1e-6) -> str | None:
    """None when `got` is an accepted output for `want` under `mode`; else why not."""
    if mode == "exact":
        if got == want:
            return None
        return f"output differs: expected {_quote(want)}, got {_quote(got)}"
    if mode == "lines":
        g_lines, w_lines = _lines(got), _lines(want)
        return None if g_lines == w_lines else _first_difference(g_lines, w_lines, "line")
    g_tokens, w_tokens = got.split(), want.split()
    if mode == "float":
        if len(g_tokens) == len(w_tokens) and all(
                _close(g, w, tol) for g, w in zip(g_tokens, w_tokens, strict=True)):
            return None
        pairs = zip(g_tokens, w_tokens, strict=False)
        for i, (g, w) in enumerate(pairs):
            if not _close(g, w, tol):
                return f"token {i + 1}: expected {_quote(w)}, got {_quote(g)} (tol {tol:g})"
        return f"expected {len(w_tokens)} tokens, got {len(g_tokens)}"
    return None if g_tokens == w_tokens else _first_difference(g_tokens, w_tokens, "token")

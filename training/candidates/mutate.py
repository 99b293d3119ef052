"""Offline candidates: plausible wrong programs from a correct one by AST mutations.

Each mutant changes one site (or, for `order=2`, two sites) and is spliced back into the
original text, so formatting and comments stay as written: a reward model must not be able
to tell mutants from the original by style. Operators: arithmetic and comparison swaps,
boolean swaps, off-by-one constants, index/range shifts, dropped statements and branches,
negated conditions, wrong return values, swapped arguments, min/max-style builtin swaps;
with `extra=True` also the LLM-style operators of `mutate_extra.py`.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator

from training.candidates.edits import Edit, Offsets, segment
from training.candidates.mutate_extra import extra_edits

_BINOP_SWAP: dict[type[ast.operator], list[str]] = {
    ast.Add: ["-"], ast.Sub: ["+"], ast.Mult: ["+", "//"], ast.FloorDiv: ["/", "%"],
    ast.Div: ["//", "*"], ast.Mod: ["//"], ast.Pow: ["*"], ast.LShift: [">>"],
    ast.RShift: ["<<"], ast.BitAnd: ["|"], ast.BitOr: ["&"], ast.BitXor: ["|"],
}
_CMP_SWAP: dict[type[ast.cmpop], list[str]] = {
    ast.Lt: ["<=", ">"], ast.LtE: ["<", ">="], ast.Gt: [">=", "<"], ast.GtE: [">", "<="],
    ast.Eq: ["!="], ast.NotEq: ["=="], ast.In: ["not in"], ast.NotIn: ["in"],
    ast.Is: ["is not"], ast.IsNot: ["is"],
}
_CMP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
             ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in", ast.Is: "is",
             ast.IsNot: "is not"}
_NAME_SWAP = {"min": "max", "max": "min", "any": "all", "all": "any", "True": "False",
              "False": "True", "append": "extend", "upper": "lower", "lower": "upper",
              "startswith": "endswith", "endswith": "startswith", "sorted": "reversed",
              "isdigit": "isalpha", "isalpha": "isdigit", "remove": "pop"}
_COMMUTATIVE = frozenset({"max", "min", "print", "isinstance", "hasattr", "zip", "getattr"})
_AUG_SWAP = {ast.Add: "-=", ast.Sub: "+=", ast.Mult: "+=", ast.FloorDiv: "%="}


def _edits(src: bytes, tree: ast.AST) -> Iterator[Edit]:
    off = Offsets(src)
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Module) and n.body
                  and isinstance(n.body[0], ast.Expr)
                  and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or getattr(node, "_is_ann", False):
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAP:
            left, right = segment(src, off, node.left), segment(src, off, node.right)
            a, b = off.span(node)
            mid = src[off.span(node.left)[1]:off.span(node.right)[0]].decode("utf-8")
            for sym in _BINOP_SWAP[type(node.op)]:
                # keep the spacing written around the operator
                new_mid = mid.replace(mid.strip().lstrip("(").rstrip(")").strip() or mid, sym, 1)
                if new_mid != mid:
                    yield Edit(a, b, src[a:off.span(node.left)[0]].decode() + left + new_mid
                               + right + src[off.span(node.right)[1]:b].decode(), "binop")
        elif isinstance(node, ast.Compare) and len(node.ops) == 1:
            op = type(node.ops[0])
            lo, ro = off.span(node.left)[1], off.span(node.comparators[0])[0]
            mid = src[lo:ro].decode("utf-8")
            for sym in _CMP_SWAP.get(op, []):
                new_mid = mid.replace(_CMP_TEXT[op], sym, 1)
                if new_mid != mid:
                    yield Edit(lo, ro, new_mid, "compare")
        elif isinstance(node, ast.BoolOp):
            for v in node.values[1:]:
                a = off.span(node.values[0])[1]
                b = off.span(v)[0]
                mid = src[a:b].decode("utf-8")
                if mid.strip() in ("and", "or"):
                    new = "or" if mid.strip() == "and" else "and"
                    yield Edit(a, b, mid.replace(mid.strip(), new), "boolop")
                break
        elif (isinstance(node, ast.Constant) and type(node.value) is int
              and id(node) not in docstrings):
            a, b = off.span(node)
            v = node.value
            for nv in (v + 1, v - 1) if v != 0 else (1,):
                yield Edit(a, b, str(nv) if nv >= 0 or src[a - 1:a] != b"-" else str(-nv),
                           "constant")
        elif isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
            if isinstance(node.slice, ast.Constant | ast.Name | ast.BinOp):
                a, b = off.span(node.slice)
                text = src[a:b].decode("utf-8")
                yield Edit(a, b, f"{text} + 1", "index")
        elif isinstance(node, ast.Call):
            yield from _call_edits(src, off, node)
        elif isinstance(node, ast.Name) and node.id in _NAME_SWAP:
            a, b = off.span(node)
            yield Edit(a, b, _NAME_SWAP[node.id], "builtin")
        elif isinstance(node, ast.Attribute) and node.attr in _NAME_SWAP:
            a, b = off.span(node)
            text = src[a:b].decode("utf-8")
            yield Edit(a, b, text[: text.rfind(node.attr)] + _NAME_SWAP[node.attr], "builtin")
        elif isinstance(node, ast.If | ast.While):
            a, b = off.span(node.test)
            text = src[a:b].decode("utf-8")
            if isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not):
                yield Edit(a, b, segment(src, off, node.test.operand), "negate")
            elif isinstance(node.test, ast.Name | ast.Call | ast.Attribute | ast.Subscript):
                yield Edit(a, b, f"not {text}", "negate")
            elif isinstance(node.test, ast.BoolOp):
                yield Edit(a, b, f"not ({text})", "negate")
            if isinstance(node, ast.If) and node.orelse and not _is_elif(node, src, off):
                # drop the else branch: else-lines removed, body kept
                ea = off.lines(node.orelse[0], src)[0]
                head = src.rfind(b"else", 0, ea)
                if head != -1:
                    la = src.rfind(b"\n", 0, head) + 1
                    yield Edit(la, off.lines(node.orelse[-1], src)[1], "", "drop_branch")
        elif isinstance(node, ast.AugAssign) and type(node.op) in _AUG_SWAP:
            a = off.span(node.target)[1]
            b = off.span(node.value)[0]
            mid = src[a:b].decode("utf-8")
            yield Edit(a, b, mid.replace(mid.strip(), _AUG_SWAP[type(node.op)]), "augassign")
        if isinstance(node, ast.FunctionDef | ast.For | ast.While | ast.If | ast.With):
            yield from _stmt_edits(src, off, node)


def _mark_annotations(tree: ast.AST) -> None:
    """Tag annotation subtrees: mutating `List[int]` is not a plausible bug."""
    for n in ast.walk(tree):
        anns: list[ast.expr | None] = []
        if isinstance(n, ast.arg):
            anns.append(n.annotation)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
            anns.append(n.returns)
        elif isinstance(n, ast.AnnAssign):
            anns.append(n.annotation)
        for a in anns:
            for sub in ast.walk(a) if a is not None else ():
                sub._is_ann = True  # type: ignore[attr-defined]


def _is_elif(node: ast.If, src: bytes, off: Offsets) -> bool:
    first = node.orelse[0]
    return isinstance(first, ast.If) and src[off.span(first)[0]:].startswith(b"if") and \
        src[off.lines(first, src)[0]:off.span(first)[0]].strip() == b"" and \
        b"elif" in src[off.lines(first, src)[0]:off.span(first)[1]][:first.col_offset + 4]


def _call_edits(src: bytes, off: Offsets, node: ast.Call) -> Iterator[Edit]:
    args = [a for a in node.args if not isinstance(a, ast.Starred)]
    commutative = isinstance(node.func, ast.Name) and node.func.id in _COMMUTATIVE
    if len(args) >= 2 and len(args) == len(node.args) and not commutative:
        a0, a1 = off.span(args[0]), off.span(args[1])
        t0 = src[a0[0]:a0[1]].decode("utf-8")
        t1 = src[a1[0]:a1[1]].decode("utf-8")
        if t0 != t1:
            mid = src[a0[1]:a1[0]].decode("utf-8")
            yield Edit(a0[0], a1[1], t1 + mid + t0, "swap_args")
    if isinstance(node.func, ast.Name) and node.func.id == "range" and args:
        stop = args[-1] if len(args) <= 2 else args[1]
        a, b = off.span(stop)
        text = src[a:b].decode("utf-8")
        if not (isinstance(stop, ast.BinOp) and isinstance(stop.right, ast.Constant)):
            yield Edit(a, b, f"{text} - 1", "range")
        if len(args) >= 2:
            a, b = off.span(args[0])
            yield Edit(a, b, f"{src[a:b].decode('utf-8')} + 1", "range")


def _stmt_edits(src: bytes, off: Offsets, node: ast.AST) -> Iterator[Edit]:
    body: list[ast.stmt] = list(getattr(node, "body", []))
    if len(body) >= 2:
        for stmt in body:
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # a docstring: dropping it changes nothing
            if isinstance(stmt, ast.Return) and stmt is body[-1]:
                continue
            a, b = off.lines(stmt, src)
            yield Edit(a, b, "", "drop_stmt")
    for stmt in body:
        if isinstance(stmt, ast.Return) and stmt.value is not None:
            a, b = off.span(stmt.value)
            text = src[a:b].decode("utf-8")
            if text in ("True", "False"):
                yield Edit(a, b, "False" if text == "True" else "True", "wrong_return")
            elif isinstance(stmt.value, ast.BoolOp | ast.Call):
                yield Edit(a, b, f"not ({text})" if isinstance(stmt.value, ast.BoolOp)
                           else f"not {text}", "wrong_return")
            elif isinstance(stmt.value, ast.Name):
                others = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                                 and isinstance(n.ctx, ast.Store) and n.id != text})
                for o in others[:2]:
                    yield Edit(a, b, o, "wrong_return")
        if isinstance(stmt, ast.Continue | ast.Break):
            a, b = off.span(stmt)
            yield Edit(a, b, "break" if isinstance(stmt, ast.Continue) else "continue",
                       "loop_control")


def _apply(src: bytes, edits: list[Edit]) -> tuple[str, ast.Module] | None:
    edits = sorted(edits, key=lambda e: e.start, reverse=True)
    for i in range(1, len(edits)):
        if edits[i].end > edits[i - 1].start:
            return None  # overlapping sites
    out = src
    for e in edits:
        out = out[: e.start] + e.text.encode("utf-8") + out[e.end:]
    try:
        text = out.decode("utf-8")
        return text, ast.parse(text)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return None


def all_mutants(code: str, *, order: int = 1, seed: int = 0, limit: int = 200,
                extra: bool = False) -> list[tuple[str, str]]:
    """Distinct parseable mutants as (kind, code); order-2 mutants combine two sites."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    src = code.encode("utf-8")
    _mark_annotations(tree)
    edits = list(_edits(src, tree))
    if extra:
        edits += extra_edits(src, tree)
    rng = random.Random(seed)
    seen = {code}
    out: list[tuple[str, str]] = []
    combos: list[list[Edit]] = [[e] for e in edits]
    if order >= 2 and len(edits) >= 2:
        combos += [rng.sample(edits, 2) for _ in range(min(limit, 3 * len(edits)))]
    base = ast.dump(tree)
    for combo in combos:
        applied = _apply(src, combo)
        if applied is None or applied[0] in seen:
            continue
        text, new_tree = applied
        if ast.dump(new_tree) == base:
            continue  # a spacing-only change
        seen.add(text)
        out.append(("+".join(e.kind for e in combo), text))
    return out


def sample_mutants(code: str, n: int, *, seed: int = 0, order2_share: float = 0.3,
                   extra: bool = False) -> list[tuple[str, str]]:
    """`n` mutants spread over operator kinds (round-robin by kind), deterministic in `seed`."""
    rng = random.Random(seed)
    every = all_mutants(code, order=2 if order2_share > 0 else 1, seed=seed, extra=extra)
    singles = [m for m in every if "+" not in m[0]]
    doubles = [m for m in every if "+" in m[0]]
    n2 = min(len(doubles), round(n * order2_share))
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for m in singles:
        by_kind.setdefault(m[0], []).append(m)
    for ms in by_kind.values():
        rng.shuffle(ms)
    picked: list[tuple[str, str]] = []
    kinds = sorted(by_kind)
    rng.shuffle(kinds)
    while len(picked) < n - n2 and any(by_kind.values()):
        for k in kinds:
            if by_kind[k] and len(picked) < n - n2:
                picked.append(by_kind[k].pop())
    rng.shuffle(doubles)
    picked += doubles[: n - len(picked)]
    return picked

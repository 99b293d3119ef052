"""Real-code pairs: functions of the Python standard library against their own mutants.

The bundled problems give a few hundred correct programs, so a small encoder trained on
them alone learns what those references look like more than what a bug looks like. Real
code adds thousands of correct functions for free: each stdlib function of `min_lines` to
`max_lines` lines is paired (chosen) with one AST mutant of itself (rejected), made by the
same operators as the candidates (`training.candidates.mutate`). This is the seeded-bug recipe of
learned bug detectors (DeepBugs, Pradel & Sen 2018).
The labels are weak: nothing is executed, and a mutant may be equivalent to its original.
So these pairs only ever go to training, never to validation, and the split and the
evaluation stay on sandbox pass rates. Deterministic for a given Python (the stdlib of the
running interpreter; its version is part of the default model's build key).

`python -m training.pairs.realcode --out=P.jsonl --n=3000` writes such pairs alone.
"""

from __future__ import annotations

import ast
import hashlib
import random
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from training.candidates.mutate import sample_mutants
from training.common.cli import parse_overrides
from training.common.records import write_jsonl

# test suites, GUI and tool trees: unusual code, or code that is mostly fixtures
SKIP_DIRS = frozenset({"test", "tests", "idlelib", "lib2to3", "tkinter", "turtledemo",
                       "site-packages", "dist-packages", "ensurepip", "pydoc_data"})


@dataclass
class RealCodeConfig:
    """Which functions and how many pairs (all `--key=value` flags)."""

    out: str = "realcode_pairs.jsonl"
    n: int = 3000  # pairs (one per function; 0: none)
    min_lines: int = 4
    max_lines: int = 25
    group: int = 12  # pairs per pseudo-question (a batch unit with batch_by=question)
    seed: int = 0


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_functions(min_lines: int = 4, max_lines: int = 25) -> Iterator[tuple[str, str, str]]:
    """(id, question, code) of undecorated stdlib functions, dedented, in file order."""
    root = stdlib_root()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if SKIP_DIRS & set(rel.parts):
            continue
        try:
            src = path.read_text("utf-8")
            tree = ast.parse(src)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = src.splitlines()
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef) or node.decorator_list:
                continue
            end = node.end_lineno or node.lineno
            if not min_lines <= end - node.lineno + 1 <= max_lines:
                continue
            code = textwrap.dedent("\n".join(lines[node.lineno - 1:end])) + "\n"
            try:
                ast.parse(code)
            except SyntaxError:  # a continuation line dedent cannot fix
                continue
            doc = ast.get_docstring(node) or ""
            question = doc.strip().split("\n\n")[0] if doc else f"Implement `{node.name}`."
            yield f"{rel}:{node.name}:{node.lineno}", question, code


def realcode_pairs(cfg: RealCodeConfig, *, progress: bool = False) -> list[dict[str, Any]]:
    """Up to `cfg.n` (original, mutant) pairs from a seeded sample of stdlib functions."""
    if cfg.n <= 0:
        return []
    funcs = list(stdlib_functions(cfg.min_lines, cfg.max_lines))
    random.Random(cfg.seed).shuffle(funcs)
    pairs: list[dict[str, Any]] = []
    bar = tqdm(total=cfg.n, desc="real-code pairs", unit="pair", disable=not progress)
    for fid, question, code in funcs:
        if len(pairs) >= cfg.n:
            break
        seed = int(hashlib.sha256(f"{cfg.seed}:{fid}".encode()).hexdigest()[:8], 16)
        mutants = sample_mutants(code, 1, seed=seed, order2_share=0.0, extra=True)
        if not mutants:
            continue
        kind, mutant = mutants[0]
        pairs.append({"problem_id": f"stdlib/{len(pairs) // max(1, cfg.group):05d}",
                      "question": question, "chosen": code, "rejected": mutant,
                      "chosen_pass": None, "rejected_pass": None,
                      "chosen_origin": f"stdlib:{fid}", "rejected_origin": f"mutant:{kind}"})
        bar.update(1)
    bar.close()
    return pairs


def data_key() -> str:
    """What the pairs depend on besides the config: the interpreter's version."""
    return f"{sys.implementation.name}-{sys.version.split()[0]}"


def main(argv: list[str] | None = None) -> None:
    cfg = parse_overrides(RealCodeConfig, argv if argv is not None else sys.argv[1:])
    pairs = realcode_pairs(cfg, progress=True)
    write_jsonl(cfg.out, pairs)
    print(f"{len(pairs)} pairs -> {cfg.out}")


if __name__ == "__main__":
    main()

"""The memorization control: renamed solutions keep their behaviour and their interface."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from sandbox_worker.executor import Executor
from training.evaluation.rename import rename_locals
from training.problems.loaders import load_humaneval
from training.problems.passrate import ExecSettings, score_candidates, scored_rows


def test_locals_are_renamed_parameters_and_globals_kept() -> None:
    src = ("import math\nLIMIT = 3\n\ndef f(xs, k=1):\n    # sum them\n    total = 0\n"
           "    for x in xs:\n        total += x * k\n    return [total for _ in range(LIMIT)]\n")
    out = rename_locals(src)
    fn = ast.parse(out).body[2]
    assert isinstance(fn, ast.FunctionDef) and [a.arg for a in fn.args.args] == ["xs", "k"]
    names = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
    assert {"xs", "k", "LIMIT", "range"} <= names and not {"total", "x", "_"} & names
    assert "# sum them" not in out  # re-rendered: the text differs, not only the names
    ns: dict[str, object] = {}
    exec(compile(out, "<renamed>", "exec"), ns)  # our own fixed program
    assert ns["f"]([1, 2], 2) == [6, 6, 6]  # type: ignore[operator]
    assert rename_locals("def broken(:\n") == "def broken(:\n"


def test_renamed_humaneval_solutions_still_pass(tmp_path: Path, executor: Executor) -> None:
    problems = load_humaneval(40)
    renamed = [dataclasses.replace(p, reference=rename_locals(p.reference)) for p in problems]
    assert all(r.reference != p.reference for r, p in zip(renamed, problems, strict=True))
    cands = [{"problem_id": p.id, "candidate_id": f"{p.id}/ref", "code": p.reference,
              "origin": "reference"} for p in renamed]
    out = tmp_path / "rates.jsonl"
    score_candidates(renamed, cands, out, ExecSettings(timeout_s=2.0), progress=False,
                     executor=executor)
    rows = scored_rows(renamed, cands, out, 2.0)
    assert len(rows) == 40 and all(r["pass_rate"] == 1.0 for r in rows)

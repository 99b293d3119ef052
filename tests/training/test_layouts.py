"""Training loaders read stdio/call datasets in their published layouts, and pass rates run
on them (the same fixtures as tests/sandbox/test_datasets.py)."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox_worker.executor import Executor
from training.common.records import read_jsonl
from training.problems.loaders import Problem, load
from training.problems.passrate import ExecSettings, score_candidates

FIXTURES = Path(__file__).resolve().parents[1] / "sandbox" / "fixtures"


def _dataset(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    with path.open("w") as fh:
        for name in ("apps_stdio", "taco_call", "code_contests", "lcb_stdin", "lcb_functional",
                     "verl", "kodcode"):
            row = json.loads((FIXTURES / f"{name}.json").read_text())
            fh.write(json.dumps({"id": name, **row}) + "\n")
    return path


def test_layout_rows_load_round_trip_and_score(tmp_path: Path, executor: Executor) -> None:
    problems = load("layout", str(_dataset(tmp_path)))
    assert [p.id for p in problems] == ["apps_stdio", "taco_call", "code_contests", "lcb_stdin",
                                        "lcb_functional", "verl", "kodcode"]
    assert all(p.spec is not None and p.reference for p in problems)
    assert Problem.from_row(problems[1].to_row()).job_tests() == problems[1].job_tests()
    candidates = [{"problem_id": p.id, "candidate_id": f"{p.id}/ref", "code": p.reference}
                  for p in problems]
    candidates += [{"problem_id": p.id, "candidate_id": f"{p.id}/bad", "code": "print(-1)\ndef add(a, b):\n    return -7"}
                   for p in problems]
    out = tmp_path / "rates.jsonl"
    assert score_candidates(problems, candidates, out, ExecSettings(), progress=False,
                            executor=executor) == len(candidates)
    rates = {r["candidate_id"]: r["pass_rate"] for r in read_jsonl(out)}
    assert all(rates[f"{p.id}/ref"] == 1.0 for p in problems), rates
    assert all(rates[f"{p.id}/bad"] == 0.0 for p in problems), rates
    assert score_candidates(problems, candidates, out, ExecSettings(), progress=False,
                            executor=executor) == 0  # resumable: same run keys

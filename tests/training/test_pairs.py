"""Pair rules (AceCoder), de-duplication, caps, and the split by question."""

from __future__ import annotations

from typing import Any

from training.pairs.build import PairRules, build_pairs, is_val, question_pairs, valid_pair
from training.problems.loaders import Problem


def test_rule_boundaries() -> None:
    r = PairRules()
    assert valid_pair(0.8, 0.4, r)
    assert valid_pair(1.0, 0.1, r)
    assert not valid_pair(0.79, 0.1, r)  # chosen below 0.8
    assert not valid_pair(1.0, 0.0, r)  # zero-pass rejected excluded
    assert not valid_pair(0.9, 0.6, r)  # gap 0.3 < 0.4
    assert not valid_pair(1.0, 0.61, r)


def _cands(pid: str, rates: list[float], dup: bool = False) -> list[dict[str, Any]]:
    rows = [{"problem_id": pid, "candidate_id": f"{pid}/{i}", "code": f"code_{i}_{r}",
             "pass_rate": r} for i, r in enumerate(rates)]
    if dup:
        rows.append({**rows[0], "candidate_id": f"{pid}/dup", "code": rows[0]["code"] + "\n\n"})
    return rows


def test_question_pairs_follow_rules_and_dedupe() -> None:
    rules = PairRules(max_pairs_per_question=100)
    pairs = question_pairs("q", "p", _cands("p", [1.0, 0.9, 0.5, 0.2, 0.0, 0.7], dup=True), rules)
    for pr in pairs:
        assert valid_pair(pr["chosen_pass"], pr["rejected_pass"], rules)
    keys = {(p["chosen"], p["rejected"]) for p in pairs}
    assert len(keys) == len(pairs)
    # chosen {1.0, 0.9} x rejected {0.5, 0.2} -> 4 valid pairs (0.9-0.5 = 0.4 ok)
    assert len(pairs) == 4
    assert all("code_0" not in p["rejected"] for p in pairs)


def test_cap_covers_every_rejected_first() -> None:
    rules = PairRules(max_pairs_per_question=3)
    pairs = question_pairs("q", "p", _cands("p", [1.0, 1.0, 0.5, 0.3, 0.2]), rules)
    assert len(pairs) == 3
    assert len({p["rejected"] for p in pairs}) == 3


def test_split_is_by_question_and_deterministic() -> None:
    problems = [Problem(id=f"q{i}", question=f"question {i}", tests=["assert 1"])
                for i in range(60)]
    rows = [c for p in problems for c in _cands(p.id, [1.0, 0.5, 0.2])]
    rules = PairRules(val_fraction=0.25, seed=7)
    train, val = build_pairs(problems, rows, rules)
    assert train and val
    tq = {p["problem_id"] for p in train}
    vq = {p["problem_id"] for p in val}
    assert not tq & vq
    assert all(is_val(q, rules) for q in vq)
    assert 5 <= len(vq) <= 25
    assert build_pairs(problems, rows, rules) == (train, val)

"""Preference pairs with AceCoder's rule, de-duplicated, split train/validation by question.

Rule: chosen pass rate ≥ 0.8, rejected pass rate > 0 (zero-pass programs are mostly
syntax or import failures), and chosen − rejected ≥ 0.4.
Pairing strategy, per question: candidates are de-duplicated by their whitespace-stripped
text; every valid (chosen, rejected) combination is eligible; when there are more than
`max_pairs_per_question`, pairs are taken round-robin over the rejected programs (each
rejected program is used once before any is used twice, each time with the next chosen
program in a seeded order), so every distinct failure mode is represented.
Split: a question goes to validation when a seeded hash of its id falls under
`val_fraction`; all its pairs go with it (never split by pair). Deterministic.

`python -m training.pairs.build --problems P.jsonl --passrates R.jsonl --out-dir pairs/`
"""

from __future__ import annotations

import argparse
import hashlib
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.common.records import read_jsonl, write_jsonl
from training.problems.loaders import Problem, load_problems


@dataclass
class PairRules:
    """AceCoder's pair thresholds and our pairing caps."""

    chosen_min: float = 0.8  # chosen pass rate ≥ this
    rejected_above: float = 0.0  # rejected pass rate > this
    min_gap: float = 0.4  # chosen − rejected ≥ this
    max_pairs_per_question: int = 32
    val_fraction: float = 0.1
    seed: int = 0


def is_val(problem_id: str, rules: PairRules) -> bool:
    """Deterministic question-level split."""
    h = hashlib.sha256(f"{rules.seed}:{problem_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < rules.val_fraction


def valid_pair(chosen: float, rejected: float, rules: PairRules) -> bool:
    """AceCoder's rule on two pass rates."""
    return (chosen >= rules.chosen_min and rejected > rules.rejected_above
            and chosen - rejected >= rules.min_gap)


def question_pairs(question: str, problem_id: str, cands: list[dict[str, Any]],
                   rules: PairRules) -> list[dict[str, Any]]:
    """Pairs for one question, capped with the round-robin strategy in the module doc."""
    seen: set[str] = set()
    uniq = []
    for c in cands:
        key = c["code"].strip()
        if key and key not in seen:
            seen.add(key)
            uniq.append(c)
    rng = random.Random(f"{rules.seed}:{problem_id}")
    chosen = [c for c in uniq if c["pass_rate"] >= rules.chosen_min]
    rejected = [c for c in uniq if c["pass_rate"] > rules.rejected_above]
    rng.shuffle(chosen)
    rng.shuffle(rejected)
    pairs: list[dict[str, Any]] = []
    used: set[tuple[int, int]] = set()
    turn = 0
    while len(pairs) < rules.max_pairs_per_question:
        added = False
        for j, r in enumerate(rejected):
            ok = [i for i, c in enumerate(chosen)
                  if (i, j) not in used and valid_pair(c["pass_rate"], r["pass_rate"], rules)]
            if not ok:
                continue
            i = ok[turn % len(ok)]
            used.add((i, j))
            c = chosen[i]
            pairs.append({"problem_id": problem_id, "question": question,
                          "chosen": c["code"], "rejected": r["code"],
                          "chosen_pass": c["pass_rate"], "rejected_pass": r["pass_rate"],
                          "chosen_origin": c.get("origin", ""),
                          "rejected_origin": r.get("origin", "")})
            added = True
            if len(pairs) >= rules.max_pairs_per_question:
                break
        turn += 1
        if not added:
            break
    return pairs


def build_pairs(problems: list[Problem], rows: list[dict[str, Any]], rules: PairRules
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation) pairs from pass-rate rows."""
    by_q: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_q[r["problem_id"]].append(r)
    train: list[dict[str, Any]] = []
    val: list[dict[str, Any]] = []
    for p in sorted(problems, key=lambda p: p.id):
        ps = question_pairs(p.question, p.id, by_q.get(p.id, []), rules)
        (val if is_val(p.id, rules) else train).extend(ps)
    return train, val


def write_pairs(out_dir: str | Path, train: list[dict[str, Any]], val: list[dict[str, Any]]
                ) -> tuple[Path, Path]:
    """Write train.jsonl and val.jsonl; returns their paths."""
    out = Path(out_dir)
    tp, vp = out / "train.jsonl", out / "val.jsonl"
    write_jsonl(tp, train)
    write_jsonl(vp, val)
    return tp, vp


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", required=True)
    ap.add_argument("--passrates", required=True)
    ap.add_argument("--out-dir", required=True)
    d = PairRules()
    for name, val in vars(d).items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(val), default=val)
    args = ap.parse_args(argv)
    rules = PairRules(**{k: getattr(args, k) for k in vars(d)})
    train, val = build_pairs(load_problems(args.problems), list(read_jsonl(args.passrates)),
                             rules)
    tp, vp = write_pairs(args.out_dir, train, val)
    print(f"{len(train)} train pairs -> {tp}; {len(val)} validation pairs -> {vp}")


if __name__ == "__main__":
    main()

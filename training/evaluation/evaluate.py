"""Reward-model evaluation: pairwise accuracy on validation pairs, and best-of-N on
held-out problems (HumanEval; candidates = canonical solution + AST mutants).

Best-of-N reports, averaged over problems, the pass rate of: the top-scored candidate
(`top1`), a uniformly random candidate (`random`, its expected value), and the best
candidate (`oracle`); plus the share of problems whose pick passes every test (`solved`).
`python -m training.evaluation.evaluate --default` evaluates the built-in default model (building it
when missing); `--model DIR` any exported model. Writes a markdown table and a PNG to
bench-results/eval.md and bench-results/eval.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from sandbox_worker.protocol import EXECUTOR_VERSION
from training.candidates.sample import SampleConfig, mutation_candidates
from training.common.plots import plot_best_of_n
from training.common.records import read_jsonl
from training.evaluation.rename import rename_locals
from training.models.base import encode, load_model, load_tokenizer, render, score_ids
from training.models.export import read_metadata
from training.models.lm_reward import mean_logprobs
from training.problems.loaders import Problem, load_humaneval
from training.problems.passrate import ExecSettings, score_candidates, scored_rows

# rewards of (question, program) items, in order
ScoreFn = Callable[[Sequence[tuple[str, str]]], list[float]]


def classifier_scorer(model: Any, tok: Any, max_length: int) -> ScoreFn:
    """Scores from a sequence-classification reward model (as the service computes them)."""
    def score(items: Sequence[tuple[str, str]]) -> list[float]:
        ids = encode(tok, [render(tok, q, p) for q, p in items], max_length)
        with torch.inference_mode():
            return score_ids(model, ids, tok.pad_token_id)
    return score


def likelihood_scorer(path: Path, meta: dict[str, Any], max_length: int) -> ScoreFn:
    """Scores from a `mean_logprob` export: scale * mean program log-probability + bias."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    scale, bias = float(meta.get("score_scale", 1.0)), float(meta.get("score_bias", 0.0))

    def score(items: Sequence[tuple[str, str]]) -> list[float]:
        means = mean_logprobs(model, tok, items, max_length=max_length, progress=True)
        return [scale * m + bias for m in means]
    return score


def load_scorer(path: Path, max_length: int | None = None) -> tuple[ScoreFn, int]:
    """The scorer of an exported model directory, and the max length it uses."""
    meta = read_metadata(path)
    length = max_length or int(meta.get("max_length", 512))
    if meta.get("reward_kind") == "mean_logprob":
        return likelihood_scorer(path, meta, length), length
    tok = load_tokenizer(str(path))
    return classifier_scorer(load_model(str(path), tok).eval(), tok, length), length


def pair_accuracy(score: ScoreFn, pairs: list[dict[str, Any]]) -> float:
    """Share of pairs where r(chosen) > r(rejected) (each distinct program scored once)."""
    items = sorted({(p["question"], p[k]) for p in pairs for k in ("chosen", "rejected")})
    r = dict(zip(items, score(items), strict=True))
    return sum(r[(p["question"], p["chosen"])] > r[(p["question"], p["rejected"])]
               for p in pairs) / max(1, len(pairs))


def heldout_candidates(problems: list[Problem], n: int, cache: Path, *, workers: int,
                       timeout_s: float = 1.0, seed: int = 1234) -> list[dict[str, Any]]:
    """Canonical + (n−1) mutants per problem with sandbox pass rates (cached on disk)."""
    cfg = SampleConfig(n=n - 1, include_reference=True, seed=seed)
    cands = [c for p in problems for c in mutation_candidates(p, cfg)]
    score_candidates(problems, cands, cache, ExecSettings(workers=workers, timeout_s=timeout_s))
    return scored_rows(problems, cands, cache, timeout_s)


def best_of_n(score: ScoreFn, problems: list[Problem], rows: list[dict[str, Any]],
              seed: int = 0) -> dict[str, float]:
    """Mean pass rate of top-1 / random / oracle picks, and share fully solved."""
    qs = {p.id: p.question for p in problems}
    scores = score([(qs[r["problem_id"]], r["code"]) for r in rows])
    groups: dict[str, list[tuple[float, float]]] = {}
    for r, s in zip(rows, scores, strict=True):
        groups.setdefault(r["problem_id"], []).append((s, r["pass_rate"]))
    rng = random.Random(seed)
    top1, rand, oracle, solved, rsolved = [], [], [], [], []
    for g in groups.values():
        # ties broken at random: the reference is listed first, so a first-index tie-break
        # would hand a constant (collapsed) model the oracle's score
        tie = [rng.random() for _ in g]
        best = max(range(len(g)), key=lambda i: (g[i][0], tie[i]))
        top1.append(g[best][1])
        rand.append(statistics.fmean(x[1] for x in g))
        oracle.append(max(x[1] for x in g))
        solved.append(float(g[best][1] >= 1.0))
        rsolved.append(statistics.fmean(float(x[1] >= 1.0) for x in g))
    return {"problems": float(len(groups)), "candidates": float(len(rows)),
            "top1": statistics.fmean(top1), "random": statistics.fmean(rand),
            "oracle": statistics.fmean(oracle), "top1_solved": statistics.fmean(solved),
            "random_solved": statistics.fmean(rsolved)}


def markdown(name: str, res: dict[str, Any]) -> str:
    """The result table."""
    b = res["best_of_n"]
    lines = [f"## Reward-model evaluation: {name}", "",
             f"HumanEval, {int(b['problems'])} problems, {int(b['candidates'])} candidates "
             f"({'canonical with locals renamed' if res.get('renamed') else 'canonical'} + "
             f"AST mutants, N={res['n']}); pass rates from the sandbox.", "",
             "| pick | mean pass rate | all tests pass |", "| --- | --- | --- |",
             f"| random (expected) | {b['random']:.3f} | {b['random_solved']:.3f} |",
             f"| top-1 by reward | {b['top1']:.3f} | {b['top1_solved']:.3f} |",
             f"| oracle | {b['oracle']:.3f} | 1.000 |", "",
             f"top-1 − random: **{100 * (b['top1'] - b['random']):+.1f} points** "
             f"(all-pass: {100 * (b['top1_solved'] - b['random_solved']):+.1f})", ""]
    if res.get("val_pair_accuracy") is not None:
        lines.append(f"Validation pair accuracy: **{res['val_pair_accuracy']:.3f}** "
                     f"({res['val_pairs']} pairs, held-out questions)")
    lines.append(f"\nScoring + execution time: {res['eval_s']:.0f} s")
    return "\n".join(lines) + "\n"


def evaluate(model_path: str | Path, *, n: int = 8, limit: int | None = None,
             val_pairs: str | Path | None = None, workers: int = 0,
             cache_dir: Path | None = None, max_length: int | None = None,
             rename: bool = False) -> dict[str, Any]:
    """Full evaluation of one exported model directory.

    `rename`: the canonical solutions get their locals renamed and are re-rendered before
    mutation (rename.py), a control for a pretrained LM that memorized HumanEval."""
    t0 = time.monotonic()
    score, max_length = load_scorer(Path(model_path), max_length)
    res: dict[str, Any] = {"model": str(model_path), "n": n, "max_length": max_length}
    vp = Path(val_pairs) if val_pairs else Path(model_path) / "val_pairs.jsonl"
    if vp.exists():
        pairs = list(read_jsonl(vp))
        res["val_pair_accuracy"] = pair_accuracy(score, pairs)
        res["val_pairs"] = len(pairs)
    problems = load_humaneval(limit)
    if rename:
        problems = [dataclasses.replace(p, reference=rename_locals(p.reference))
                    for p in problems]
    res["renamed"] = rename
    tag = "_renamed" if rename else ""
    cache = (cache_dir or Path(".")) / f"humaneval_n{n}_x{EXECUTOR_VERSION}_t1{tag}.jsonl"
    rows = heldout_candidates(problems, n, cache, workers=workers or (os.cpu_count() or 2))
    res["best_of_n"] = best_of_n(score, problems, rows)
    res["eval_s"] = time.monotonic() - t0
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--default", action="store_true", help="the built-in default model")
    ap.add_argument("--model", help="an exported model directory")
    ap.add_argument("--val-pairs", help="validation pairs (default: the model's own)")
    ap.add_argument("--n", type=int, default=8, help="candidates per held-out problem")
    ap.add_argument("--limit", type=int, help="first K HumanEval problems only")
    ap.add_argument("--max-length", type=int, help="tokens (default: the model's metadata)")
    ap.add_argument("--rename-locals", action="store_true",
                    help="memorization control: rename the solutions' locals before mutating")
    ap.add_argument("--out-dir", default="bench-results")
    args = ap.parse_args(argv)
    if args.default:
        from training.default_model import ensure, home_dir

        path, cache_dir = ensure(), home_dir() / "eval-cache"
    elif args.model:
        path, cache_dir = Path(args.model), Path(args.out_dir) / "eval-cache"
    else:
        raise SystemExit("give --default or --model DIR")
    cache_dir.mkdir(parents=True, exist_ok=True)
    res = evaluate(path, n=args.n, limit=args.limit, val_pairs=args.val_pairs,
                   cache_dir=cache_dir, max_length=args.max_length, rename=args.rename_locals)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = "default model" if args.default else str(path)
    if args.rename_locals:
        name += ", locals renamed"
    md = markdown(name, res)
    (out / "eval.md").write_text(md)
    (out / "eval.json").write_text(json.dumps(res, indent=2))
    b = res["best_of_n"]
    plot_best_of_n([{"model": name, "random": b["random"], "top1": b["top1"],
                     "oracle": b["oracle"]}], out / "eval.png")
    print(md)


if __name__ == "__main__":
    main()

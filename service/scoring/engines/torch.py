"""Torch/transformers engine: AutoModelForSequenceClassification on CPU or CUDA."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from service.scoring.engines.base import (
    Encoded,
    LoadOptions,
    ModelInfo,
    model_max_length,
    read_metadata,
)
from service.scoring.engines.packed import PackedBatch, PackedBert, pack, supports_packing
from service.scoring.engines.shared_forward import SharedPlan, group_hidden, plan

log = logging.getLogger("codereward.engines.torch")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class _Batch:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    token_type_ids: torch.Tensor | None  # (B, T)
    position_ids: torch.Tensor | None  # (B, T); decoders only
    last_index: torch.Tensor  # (B,) index of the last real token


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """`auto` is bf16 on CUDA and fp32 on CPU (CPU bf16 is slow on most hosts)."""
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return _DTYPES[dtype]


def open_checkpoint(opts: LoadOptions) -> tuple[torch.device, torch.dtype, dict[str, Any], Any]:
    """Device, dtype, codereward.json and tokenizer of a checkpoint (offline, local files)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(opts.path), local_files_only=True)
    return (torch.device(opts.device), resolve_dtype(opts.dtype, opts.device),
            read_metadata(opts.path), tokenizer)


def pad_id_of(tokenizer: Any) -> int:
    """The pad id batches are filled with: pad, else EOS (decoders often have no pad), else 0."""
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id
    return int(pad) if pad is not None else 0


def torch_model_info(opts: LoadOptions, model: Any, tokenizer: Any, dtype: torch.dtype,
                     reward: str = "classifier") -> ModelInfo:
    """What /models reports for a model loaded with torch."""
    return ModelInfo(
        name=opts.name, backend="torch", dtype=str(dtype).removeprefix("torch."),
        device=str(torch.device(opts.device)),
        max_length=model_max_length(model.config, tokenizer, opts.max_length_tokens),
        parameters=sum(p.numel() for p in model.parameters()), path=str(opts.path),
        chat_template=bool(getattr(tokenizer, "chat_template", None)), reward=reward)


class TorchEngine:
    """Encoders use the model's own pooling; decoders are pooled at the last real token."""

    padded = True

    def __init__(self, opts: LoadOptions) -> None:
        from transformers import AutoModelForSequenceClassification

        self.device, self.dtype, meta, self.tokenizer = open_checkpoint(opts)
        self.score_bias = float(meta.get("score_bias", 0.0))
        torch.manual_seed(0)  # a checkpoint without head weights still scores the same each load
        model = AutoModelForSequenceClassification.from_pretrained(
            str(opts.path), num_labels=1, local_files_only=True, dtype=self.dtype)
        self.model = model.to(self.device).eval()
        head = getattr(model, "score", None)
        # HF decoder classifiers (Qwen2, Llama, ...) name their head `score`
        self.decoder = isinstance(head, torch.nn.Linear)
        self.padding_side = opts.padding_side if self.decoder else "right"
        self.pad_id = pad_id_of(self.tokenizer)
        # padding-free BERT path: a batch costs the sum of its lengths, not longest x count
        self._packed = PackedBert(model) if opts.packed and supports_packing(model) else None
        self.padded = self._packed is None
        # > 0 (decoder classifiers, e.g. AceCodeRM): prefix-shared forward (engines/prefix.py);
        # the score reads the last token's hidden state, which the shared forward gives exactly
        self.shared_prefix_tokens = opts.shared_prefix_tokens if self.decoder else 0
        self._forward: Callable[[_Batch], torch.Tensor] = self._forward_impl
        if opts.torch_compile and self._packed is None:
            self._forward = torch.compile(self._forward_impl, dynamic=True)
        elif opts.torch_compile:  # per-item attention loops do not compile into one graph
            log.info("torch_compile is not used by the packed forward", extra={"model": opts.name})
        self.info = torch_model_info(opts, model, self.tokenizer, self.dtype)

    def prepare(self, batch: Sequence[Encoded]) -> _Batch | PackedBatch | SharedPlan:
        if self.shared_prefix_tokens:
            return plan(batch, self.shared_prefix_tokens)
        if self._packed is not None:
            return pack(batch)
        width = max(len(e) for e in batch)
        n = len(batch)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        types = torch.zeros((n, width), dtype=torch.long) if batch[0].token_type_ids else None
        last = torch.empty(n, dtype=torch.long)
        left = self.padding_side == "left"
        for row, enc in enumerate(batch):
            length = len(enc)
            span = slice(width - length, width) if left else slice(0, length)
            ids[row, span] = torch.tensor(enc.input_ids)
            mask[row, span] = 1
            if types is not None and enc.token_type_ids:
                types[row, span] = torch.tensor(enc.token_type_ids)
            last[row] = width - 1 if left else length - 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0) if self.decoder else None
        return _Batch(ids, mask, types, positions, last)

    def run(self, prepared: _Batch | PackedBatch | SharedPlan) -> list[float]:
        with torch.inference_mode():
            if isinstance(prepared, SharedPlan):
                scores = self._shared_scores(prepared)
            elif isinstance(prepared, PackedBatch):
                assert self._packed is not None
                scores = self._packed.forward(prepared)
            else:
                scores = self._forward(prepared)
        return [float(s) + self.score_bias for s in scores.float().cpu().tolist()]

    def _shared_scores(self, p: SharedPlan) -> torch.Tensor:
        """Scores of a prefix-grouped batch, in batch order: each member's last hidden state
        (its prefix run once per group) through the head."""
        base = getattr(self.model, self.model.base_model_prefix)
        last: list[torch.Tensor] = [torch.empty(0)] * len(p.items)
        for group in p.groups:
            hidden = group_hidden(base, p.items, group, self.device, padded=self.padded)
            for m, h in zip(group.members, hidden, strict=True):
                last[m] = h[-1]
        result: torch.Tensor = self.model.score(torch.stack(last))[:, 0]  # (B,)
        return result

    def _forward_impl(self, b: _Batch) -> torch.Tensor:
        dev = self.device
        ids, mask = b.input_ids.to(dev), b.attention_mask.to(dev)
        if self.decoder:
            base = getattr(self.model, self.model.base_model_prefix)
            out = base(input_ids=ids, attention_mask=mask, position_ids=b.position_ids.to(dev)
                       if b.position_ids is not None else None)
            hidden = out.last_hidden_state  # (B, T, H)
            rows = torch.arange(hidden.shape[0], device=dev)
            last = hidden[rows, b.last_index.to(dev)]  # (B, H)
            result: torch.Tensor = self.model.score(last)[:, 0]  # (B,)
            return result
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if b.token_type_ids is not None:
            kwargs["token_type_ids"] = b.token_type_ids.to(dev)
        logits: torch.Tensor = self.model(**kwargs).logits  # (B, 1)
        return logits[:, 0]

    def close(self) -> None:
        del self.model
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

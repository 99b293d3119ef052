"""Frozen-prefix cache: a BERT-style encoder's hidden states below its trainable top, once.

With the embeddings and the bottom k blocks frozen and dropout off, their output for a text
never changes during training, so it is computed once (`prefix_states`) and every step runs
only the top blocks, pooler and head (`top_scores`): a step then costs the top blocks'
forward and backward instead of the whole forward. Exact (same numbers as the full forward
up to float rounding). Applies to models with `base_model.embeddings`,
`base_model.encoder.layer`, `base_model.pooler` and `classifier` (BERT, MiniLM); `supported`
says whether a model qualifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm import tqdm
from transformers.masking_utils import create_bidirectional_mask

from training.models.base import collate


def supported(model: Any) -> bool:
    """Whether the model has the BERT layout this cache drives."""
    base = getattr(model, "base_model", None)
    return (base is not None and hasattr(base, "embeddings") and hasattr(model, "classifier")
            and getattr(base, "pooler", None) is not None
            and hasattr(getattr(base, "encoder", None), "layer"))


def _mask(base: Any, hidden: torch.Tensor, attention_mask: torch.Tensor) -> Any:
    return create_bidirectional_mask(config=base.config, inputs_embeds=hidden,
                                     attention_mask=attention_mask)


@torch.no_grad()
def prefix_states(model: Any, ids: Sequence[list[int]], k: int, pad_id: int, *,
                  batch_size: int = 32, device: str = "cpu", progress: bool = False
                  ) -> list[torch.Tensor]:
    """Per text: hidden states (T, H) after the embeddings and the first `k` blocks (on CPU)."""
    base = model.base_model
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = [torch.empty(0)] * len(ids)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # less padding per batch
    bar = tqdm(total=len(ids), desc=f"frozen prefix ({k} blocks)", unit="text",
               disable=not progress)
    for s in range(0, len(order), batch_size):
        idx = order[s: s + batch_size]
        batch = {k_: v.to(device) for k_, v in collate([ids[i] for i in idx], pad_id).items()}
        h = base.embeddings(input_ids=batch["input_ids"])
        mask = _mask(base, h, batch["attention_mask"])
        for layer in base.encoder.layer[:k]:
            h = layer(h, mask)
        for j, i in enumerate(idx):
            out[i] = h[j, : len(ids[i])].float().cpu().clone()
        bar.update(len(idx))
    bar.close()
    model.train(was_training)
    return out


def top_scores(model: Any, states: Sequence[torch.Tensor], k: int, *, device: str = "cpu"
               ) -> torch.Tensor:
    """Rewards (B,) from cached prefix states: top blocks from `k` on, pooler, head."""
    base = model.base_model
    width = max(len(s) for s in states)
    h = torch.zeros((len(states), width, states[0].shape[-1]), dtype=torch.float32)
    am = torch.zeros((len(states), width), dtype=torch.long)
    for i, s in enumerate(states):
        h[i, : len(s)] = s
        am[i, : len(s)] = 1
    h, am = h.to(device), am.to(device)
    mask = _mask(base, h, am)
    for layer in base.encoder.layer[k:]:
        h = layer(h, mask)
    logits = model.classifier(model.dropout(base.pooler(h)))
    return logits.squeeze(-1).float()


@torch.no_grad()
def score_states(model: Any, states: Sequence[torch.Tensor], k: int, *, batch_size: int = 32,
                 device: str = "cpu") -> list[float]:
    """Rewards for many cached texts (evaluation), batched by length."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(states)), key=lambda i: len(states[i]))
    out = [0.0] * len(states)
    for s in range(0, len(order), batch_size):
        idx = order[s: s + batch_size]
        for i, v in zip(idx, top_scores(model, [states[i] for i in idx], k,
                                        device=device).tolist(), strict=True):
            out[i] = float(v)
    model.train(was_training)
    return out

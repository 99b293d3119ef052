"""Padding-free forward of BERT sequence classifiers: every token of a batch in one matrix.

On CPU a padded token costs as much as a real one, so the dense layers (QKV, attention output,
feed-forward: ~80% of MiniLM's FLOPs) run over the packed (tokens, hidden) matrix of the whole
batch, and only attention runs per sequence (SDPA without a mask). No item ever sees another
item's tokens, so a score does not depend on its batch company beyond float rounding.
It reuses the weights of a loaded `BertForSequenceClassification`; other models keep the
padded path of the torch engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass
class PackedBatch:
    """A batch as one row of tokens: ids, segment ids, positions and per-item lengths."""

    input_ids: torch.Tensor  # (N,) all items' ids back to back
    token_type_ids: torch.Tensor  # (N,)
    position_ids: torch.Tensor  # (N,) 0..len-1 within each item
    lengths: list[int]  # tokens per item; sum(lengths) == N
    starts: torch.Tensor  # (B,) offset of each item's first token ([CLS], the pooled one)


def supports_packing(model: Any) -> bool:
    """True for a plain BERT encoder classifier (absolute positions, exact GELU, no decoder)."""
    config = getattr(model, "config", None)
    return (type(model).__name__ == "BertForSequenceClassification"
            and getattr(config, "model_type", "") == "bert"
            and getattr(config, "position_embedding_type", "absolute") == "absolute"
            and getattr(config, "hidden_act", "") == "gelu"
            and not getattr(config, "is_decoder", False)
            and getattr(config, "num_labels", 0) == 1
            and getattr(model.bert, "pooler", None) is not None)


def pack(batch: Sequence[Any]) -> PackedBatch:
    """Concatenate encoded items (`input_ids`, optional `token_type_ids`) without padding."""
    lengths = [len(e.input_ids) for e in batch]
    ids = torch.tensor([t for e in batch for t in e.input_ids], dtype=torch.long)
    types = torch.tensor([t for e in batch for t in (e.token_type_ids or [0] * len(e.input_ids))],
                         dtype=torch.long)
    positions = torch.cat([torch.arange(n, dtype=torch.long) for n in lengths])
    starts = torch.tensor([0, *lengths[:-1]], dtype=torch.long).cumsum(0)
    return PackedBatch(ids, types, positions, lengths, starts)


class PackedBert:
    """The packed forward over the weights of one loaded BertForSequenceClassification."""

    def __init__(self, model: Any) -> None:
        bert = model.bert
        cfg = model.config
        self.heads = int(cfg.num_attention_heads)
        self.hidden = int(cfg.hidden_size)
        self.head_dim = self.hidden // self.heads
        self.eps = float(cfg.layer_norm_eps)
        self.emb = bert.embeddings
        self.layers = []
        for layer in bert.encoder.layer:
            att = layer.attention.self
            # one (3H, H) projection instead of three: one larger GEMM per layer
            w_qkv = torch.cat([att.query.weight, att.key.weight, att.value.weight]).detach()
            b_qkv = torch.cat([att.query.bias, att.key.bias, att.value.bias]).detach()
            self.layers.append((w_qkv.t().contiguous(), b_qkv.contiguous(),
                                layer.attention.output, layer.intermediate.dense, layer.output))
        self.pooler = bert.pooler.dense
        self.classifier = model.classifier

    def forward(self, b: PackedBatch) -> torch.Tensor:
        """Scores (B,) of a packed batch (call under torch.inference_mode)."""
        emb = self.emb
        dev = emb.word_embeddings.weight.device
        x = emb.word_embeddings(b.input_ids.to(dev))  # (N, H)
        x += emb.token_type_embeddings(b.token_type_ids.to(dev))
        x += emb.position_embeddings(b.position_ids.to(dev))
        x = F.layer_norm(x, (self.hidden,), emb.LayerNorm.weight, emb.LayerNorm.bias,
                         emb.LayerNorm.eps)
        for w_qkv, b_qkv, att_out, inter, out in self.layers:
            ctx = self._attention(torch.addmm(b_qkv, x, w_qkv), b.lengths)  # (N, H)
            h = torch.addmm(att_out.dense.bias, ctx, att_out.dense.weight.t()).add_(x)
            x = F.layer_norm(h, (self.hidden,), att_out.LayerNorm.weight, att_out.LayerNorm.bias,
                             att_out.LayerNorm.eps)
            mid = F.gelu(torch.addmm(inter.bias, x, inter.weight.t()))  # (N, I)
            h = torch.addmm(out.dense.bias, mid, out.dense.weight.t()).add_(x)
            x = F.layer_norm(h, (self.hidden,), out.LayerNorm.weight, out.LayerNorm.bias,
                             out.LayerNorm.eps)
        first = x.index_select(0, b.starts.to(dev))  # (B, H) the [CLS] of each item
        pooled = torch.tanh(F.linear(first, self.pooler.weight, self.pooler.bias))
        logits: torch.Tensor = F.linear(pooled, self.classifier.weight, self.classifier.bias)
        return logits[:, 0]

    def _attention(self, qkv: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
        """Per-item unmasked SDPA over the packed (N, 3H) projections; returns (N, H)."""
        hd, nh, hid = self.head_dim, self.heads, self.hidden
        ctx = torch.empty((qkv.shape[0], hid), dtype=qkv.dtype, device=qkv.device)
        start = 0
        for n in lengths:
            # (n, 3, heads, d) -> three (1, heads, n, d) views; SDPA takes strided inputs
            q, k, v = qkv[start:start + n].view(n, 3, nh, hd).permute(1, 2, 0, 3).unsqueeze(1)
            o = F.scaled_dot_product_attention(q, k, v)  # (1, heads, n, d)
            ctx[start:start + n] = o[0].transpose(0, 1).reshape(n, hid)
            start += n
        return ctx

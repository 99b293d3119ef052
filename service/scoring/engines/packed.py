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
        self.layers: list[tuple[torch.Tensor, ...]] = []
        for layer in bert.encoder.layer:
            att, att_out = layer.attention.self, layer.attention.output
            # one (H, 3H) projection instead of three: one larger GEMM per layer
            w_qkv = torch.cat([att.query.weight, att.key.weight, att.value.weight])
            b_qkv = torch.cat([att.query.bias, att.key.bias, att.value.bias])
            # weights stored (in, out) contiguous: bf16 GEMMs copy a transposed weight per call
            self.layers.append(tuple(t.detach().contiguous() for t in (
                w_qkv.t(), b_qkv, att_out.dense.weight.t(), att_out.dense.bias,
                att_out.LayerNorm.weight, att_out.LayerNorm.bias,
                layer.intermediate.dense.weight.t(), layer.intermediate.dense.bias,
                layer.output.dense.weight.t(), layer.output.dense.bias,
                layer.output.LayerNorm.weight, layer.output.LayerNorm.bias)))
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
        hid, eps = (self.hidden,), self.eps
        for w_qkv, b_qkv, w_o, b_o, g1, n1, w_i, b_i, w_f, b_f, g2, n2 in self.layers:
            ctx = self._attention(torch.addmm(b_qkv, x, w_qkv), b.lengths)  # (N, H)
            x = F.layer_norm(torch.addmm(b_o, ctx, w_o).add_(x), hid, g1, n1, eps)
            mid = F.gelu(torch.addmm(b_i, x, w_i))  # (N, I)
            x = F.layer_norm(torch.addmm(b_f, mid, w_f).add_(x), hid, g2, n2, eps)
        first = x.index_select(0, b.starts.to(dev))  # (B, H) the [CLS] of each item
        pooled = torch.tanh(F.linear(first, self.pooler.weight, self.pooler.bias))
        logits: torch.Tensor = F.linear(pooled, self.classifier.weight, self.classifier.bias)
        return logits[:, 0]

    def _attention(self, qkv: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
        """Per-item unmasked SDPA over the packed (N, 3H) projections; returns (N, H)."""
        n_tok, nh, hd = qkv.shape[0], self.heads, self.head_dim
        # one copy into (3, heads, N, d): each item's q, k, v are then plain (heads, n, d) rows
        heads = qkv.view(n_tok, 3, nh, hd).permute(1, 2, 0, 3).contiguous()
        out = torch.empty((nh, n_tok, hd), dtype=qkv.dtype, device=qkv.device)
        start = 0
        for n in lengths:
            span = heads[:, :, start:start + n]
            out[:, start:start + n] = F.scaled_dot_product_attention(
                span[0:1], span[1:2], span[2:3])[0]  # (heads, n, d)
            start += n
        return out.transpose(0, 1).reshape(n_tok, self.hidden)

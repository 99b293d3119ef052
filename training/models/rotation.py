"""Orthogonal rotation of a Llama-style decoder's hidden states before int8 (QuaRot-style).

CTranslate2's int8 path rounds each activation row to 8 bits with one scale per row, so a few
outlier channels in a row waste most of the 8 bits. Multiplying the residual stream by an
orthogonal matrix Q spreads every outlier over all channels, while the model computes the
same function in exact arithmetic (Ashkboos et al., 2024, "QuaRot"; Liu et al., 2024,
"SpinQuant"), with no extra work at run time:

- each RMSNorm weight is first folded into the linear layers that read the norm's output
  (RMSNorm(x Q) = RMSNorm(x) Q once the norm has no weight of its own);
- the embeddings and every layer writing into the residual stream (o_proj, down_proj) are
  multiplied by Q on their output side, every layer reading from it (q/k/v, gate/up, lm_head)
  by Q on its input side; the LM head is untied from the embeddings;
- the values of each key/value head and the matching input columns of o_proj are rotated by
  a per-head Hadamard matrix (attention mixes positions, not channels).

down_proj's input (act(gate) * up) cannot be rotated offline; SmoothQuant handles it.
"""

from __future__ import annotations

from typing import Any

SEED = 0


def hadamard(n: int) -> Any:
    """The n × n Sylvester Hadamard matrix divided by sqrt(n) (orthogonal); n a power of 2."""
    import torch

    if n < 1 or n & (n - 1):
        raise ValueError(f"no Sylvester Hadamard matrix of size {n}")
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h / n ** 0.5


def random_orthogonal(n: int, gen: Any) -> Any:
    """An n × n orthogonal matrix: the largest power-of-2 Hadamard block that divides n,
    Kronecker-multiplied with a random orthogonal matrix (QR of a Gaussian), then random
    signs on the columns, in float64."""
    import torch

    block = 1
    while n % (block * 2) == 0 and block * 2 <= 256:
        block *= 2
    rest = n // block
    g = torch.randn(rest, rest, generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r))
    m = torch.kron(hadamard(block).contiguous(), q.contiguous())
    signs = torch.randint(0, 2, (n,), generator=gen).double() * 2 - 1
    return m * signs


def rotate(model: Any, seed: int = SEED) -> None:
    """Rotate `model` (a LlamaForCausalLM, bias-free, in fp32) in place; its outputs stay the
    same up to float rounding."""
    import torch

    cfg = model.config
    d = cfg.hidden_size
    head_dim = getattr(cfg, "head_dim", None) or d // cfg.num_attention_heads
    gen = torch.Generator().manual_seed(seed)
    q = random_orthogonal(d, gen)
    r = hadamard(head_dim) * (torch.randint(0, 2, (head_dim,), generator=gen).double() * 2 - 1)
    inner = model.model

    def read(lin: Any, gain: Any) -> None:  # W <- W diag(g) Q
        lin.weight.copy_(((lin.weight.double() * gain.double()) @ q).float())

    def write(lin: Any) -> None:  # W <- Q^T W
        lin.weight.copy_((q.T @ lin.weight.double()).float())

    with torch.no_grad():
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
        model.config.tie_word_embeddings = False
        emb = inner.embed_tokens.weight
        emb.copy_((emb.double() @ q).float())
        for layer in inner.layers:
            attn, mlp = layer.self_attn, layer.mlp
            for lin in (attn.q_proj, attn.k_proj, attn.v_proj):
                read(lin, layer.input_layernorm.weight)
            for lin in (mlp.gate_proj, mlp.up_proj):
                read(lin, layer.post_attention_layernorm.weight)
            layer.input_layernorm.weight.fill_(1.0)
            layer.post_attention_layernorm.weight.fill_(1.0)
            write(attn.o_proj)
            write(mlp.down_proj)
            # per head: v <- v R (rows of W_v: R^T W_v), o_proj's columns of that head: W R;
            # one R for all heads, so the query heads of a group still read one value head
            wv = attn.v_proj.weight.double().view(-1, head_dim, d)
            attn.v_proj.weight.copy_(torch.einsum("ji,hjd->hid", r, wv).reshape(-1, d).float())
            wo = attn.o_proj.weight.double().view(d, -1, head_dim)
            attn.o_proj.weight.copy_((wo @ r).reshape(d, -1).float())
        read(model.lm_head, inner.norm.weight)
        inner.norm.weight.fill_(1.0)

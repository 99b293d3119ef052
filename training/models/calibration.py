"""What the int8 conversion learns from calibration inputs, in one forward pass per item.

For every nn.Linear of a model: the per-input-channel max |x| (SmoothQuant's activation
maxima, smoothquant.py) and the input moment E[x xᵀ] (GPTQ's H, gptq.py). SmoothQuant divides
each layer's input channel j by s_j, so the smoothed model's moment is H_ij / (s_i s_j):
`rescaled` gives it without a second pass over the calibration set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class InputStats:
    absmax: dict[str, Any] = field(default_factory=dict)  # name -> (in,) float32
    moments: dict[str, Any] = field(default_factory=dict)  # name -> (in, in) float64, E[x xᵀ]


def collect(model: Any, batches: Iterable[Sequence[int]], *, moments: bool = True
            ) -> InputStats:
    """InputStats of every nn.Linear of `model` over the token sequences."""
    import torch

    stats, sums, rows = InputStats(), {}, {}
    last: list[Any] = [None, None]  # q/k/v (and gate/up) are fed the same tensor: one x.T @ x

    def hook(name: str) -> Any:
        def record(_mod: Any, args: tuple[Any, ...]) -> None:
            x = args[0].detach().reshape(-1, args[0].shape[-1])
            a = x.abs().amax(0)
            stats.absmax[name] = torch.maximum(stats.absmax[name], a) \
                if name in stats.absmax else a
            if not moments:
                return
            if last[0] is not args[0]:
                last[0], last[1] = args[0], (x.T @ x).double()  # fp32 product, fp64 sum
            sums[name] = sums[name] + last[1] if name in sums else last[1]
            rows[name] = rows.get(name, 0) + x.shape[0]
        return record

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear)]
    try:
        with torch.no_grad():
            for ids in batches:
                model(torch.tensor([list(ids)]))
                last[0] = last[1] = None
    finally:
        for h in handles:
            h.remove()
    stats.moments = {k: v / rows[k] for k, v in sums.items()}
    return stats


def rescaled(moments: dict[str, Any], divisors: dict[str, Any]) -> dict[str, Any]:
    """The moments of inputs whose channel j was divided by divisors[name][j]."""
    out = {}
    for name, h in moments.items():
        s = divisors.get(name)
        out[name] = h if s is None else h / (s.double()[:, None] * s.double()[None, :])
    return out

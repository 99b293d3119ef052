"""GPTQ onto CTranslate2's int8 grid: round weights so that their rounding errors cancel.

CTranslate2 quantizes each weight row to 8 bits by rounding to the nearest multiple of
max|row| / 127. GPTQ (Frantar et al., 2023) rounds the columns of a linear layer one at a
time and moves each column's rounding error onto the columns not yet rounded, weighted by the
inverse of H = E[x xᵀ] over calibration inputs, so the layer's output on inputs like those
changes as little as possible. The result is already on the int8 grid CTranslate2 derives
(the row maximum keeps its 127 steps), so its own quantization leaves it as it is.

On the default model after SmoothQuant, over 60 bundled reference programs used neither for
calibration nor validation, CTranslate2's int8 error in mean log-probability went from 0.0216
to 0.0184 nats (largest 0.067 to 0.046); the weights alone now cost 0.005 (CTranslate2 fp32 on
the rounded weights), so int8 activations are most of what is left; rotating the hidden
states first (rotation.py) halves that (BENCHMARKS.md §6).
"""

from __future__ import annotations

from typing import Any

BLOCK = 128  # columns rounded before their errors are pushed onto the rest at once
DAMP = 0.01  # fraction of mean(diag H) added to the diagonal so that H inverts
STEPS = 127  # CTranslate2's int8 range: round(w * 127 / max|row|)


def quantize_weight(weight: Any, moment: Any) -> Any:
    """`weight` (out × in) rounded by GPTQ onto its per-row int8 grid, as float32."""
    import torch

    w = weight.detach().double().clone()
    cols = w.shape[1]
    scale = w.abs().amax(1).clamp(min=1e-12) / STEPS
    top = w.abs().argmax(1)
    h = moment.double().clone()
    dead = torch.diag(h) == 0  # an input that is always 0: its weights do not matter
    h[dead, dead] = 1
    w[:, dead] = 0
    h += DAMP * torch.diag(h).mean() * torch.eye(cols, dtype=h.dtype)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    steps = torch.zeros_like(w)
    for i1 in range(0, cols, BLOCK):
        i2 = min(i1 + BLOCK, cols)
        block, errs, hb = w[:, i1:i2].clone(), torch.zeros_like(w[:, i1:i2]), hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            k = (block[:, i] / scale).round().clamp(-STEPS, STEPS)
            steps[:, i1 + i] = k
            err = (block[:, i] - k * scale) / hb[i, i]
            block[:, i:] -= err[:, None] @ hb[i, i:][None, :]
            errs[:, i] = err
        w[:, i2:] -= errs @ hinv[i1:i2, i2:]
    # a row whose largest weight ended below 127 steps would get a finer grid from CT2 and
    # be rounded again: give its original largest weight the full 127 steps back
    short = torch.nonzero(steps.abs().amax(1) < STEPS).flatten()
    if len(short):
        sign = torch.sign(weight.detach()[short, top[short]].double())
        steps[short, top[short]] = STEPS * torch.where(sign == 0, 1.0, sign)
    return (steps * scale[:, None]).float()


def quantize(model: Any, moments: dict[str, Any]) -> None:
    """Every nn.Linear of `model` rounded in place by GPTQ; `moments`: E[x xᵀ] of each one's
    inputs (calibration.py)."""
    import torch

    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.copy_(quantize_weight(mod.weight, moments[name]))

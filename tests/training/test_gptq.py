"""GPTQ rounding onto CTranslate2's int8 grid, and the calibration statistics it uses."""

from __future__ import annotations

import torch

from training.models import calibration, gptq


def correlated_inputs(n: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / d**0.5 + torch.eye(d)
    x = torch.randn(n, d, generator=g) @ mix
    x[:, 3] *= 20  # an outlier channel, as decoder activations have
    return x


def rtn(w: torch.Tensor) -> torch.Tensor:
    s = w.abs().amax(1, keepdim=True) / 127
    return (w / s).round().clamp(-127, 127) * s


def test_gptq_lands_on_ctranslate2s_grid_with_less_output_error_than_rounding() -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(48, 32, generator=g)
    x = correlated_inputs(2048, 32)
    q = gptq.quantize_weight(w, (x.T @ x).double() / len(x))
    # on the grid CT2 derives itself: scale = row max / 127, every weight a whole step
    scale = q.abs().amax(1, keepdim=True) / 127
    assert torch.allclose(scale, w.abs().amax(1, keepdim=True) / 127, rtol=1e-6, atol=0)
    steps = q / scale
    assert torch.allclose(steps, steps.round(), atol=1e-3) and steps.abs().max() <= 127.001
    assert torch.allclose(rtn(q), q, atol=1e-6)  # CT2 re-rounding it changes nothing
    err_gptq = (x @ (q - w).T).pow(2).mean()
    err_rtn = (x @ (rtn(w) - w).T).pow(2).mean()
    assert err_gptq < 0.7 * err_rtn


def test_gptq_ignores_inputs_that_are_always_zero() -> None:
    w = torch.randn(8, 6, generator=torch.Generator().manual_seed(2))
    x = correlated_inputs(256, 6)
    x[:, 1] = 0
    q = gptq.quantize_weight(w, (x.T @ x).double() / len(x))
    assert torch.isfinite(q).all()


def test_moments_of_divided_inputs_are_the_rescaled_moments() -> None:
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Embedding(40, 8), torch.nn.Linear(8, 8),
                                torch.nn.Linear(8, 4))
    seqs = [[1, 5, 7, 9], [2, 3], [39, 0, 11]]
    stats = calibration.collect(model, seqs)
    assert set(stats.moments) == {"1", "2"} and stats.absmax["1"].shape == (8,)
    with torch.no_grad():
        embs = torch.cat([model[0](torch.tensor(s)) for s in seqs])
    assert torch.allclose(stats.moments["1"], (embs.T @ embs).double() / len(embs), atol=1e-5)
    assert torch.allclose(stats.absmax["1"], embs.abs().amax(0))
    s = torch.rand(8) + 0.5
    got = calibration.rescaled(stats.moments, {"1": s})["1"]
    want = ((embs / s).T @ (embs / s)).double() / len(embs)
    assert torch.allclose(got, want, atol=1e-5)
    assert calibration.rescaled(stats.moments, {})["2"] is stats.moments["2"]

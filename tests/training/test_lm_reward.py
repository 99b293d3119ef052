"""Likelihood rewards: the BT scale fit, calibration sampling, and the SmolLM2 weights."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from training.models.lm_reward import calibration_pairs, encode_item, fit_scale, smollm2_gguf


def _bt_grad(a: float, diffs: list[float]) -> float:
    return sum(-d / (1 + math.exp(a * d)) for d in diffs) / len(diffs)


def test_fit_scale_is_the_bradley_terry_optimum() -> None:
    diffs = [0.3, 0.1, -0.05, 0.2, -0.1, 0.4, 0.05]
    fit = fit_scale(diffs, [0.0] * len(diffs))
    assert _bt_grad(fit["scale"], diffs) == pytest.approx(0.0, abs=1e-6)
    assert fit["accuracy"] == pytest.approx(5 / 7) and fit["pairs"] == 7
    assert fit["loss"] < math.log(2)  # better than a constant reward
    # cleaner separation earns a steeper scale: rewards read as sharper preferences
    cleaner = fit_scale([d + 0.1 for d in diffs], [0.0] * len(diffs))
    assert cleaner["scale"] > fit["scale"]
    with pytest.raises(ValueError):
        fit_scale([], [])


def test_calibration_pairs_take_whole_questions() -> None:
    pairs = [{"problem_id": f"q{i % 5}", "n": i} for i in range(40)]
    picked = calibration_pairs(pairs, 2, seed=3)
    ids = {p["problem_id"] for p in picked}
    assert len(ids) == 2 and len(picked) == 16  # every pair of the drawn questions
    assert picked == calibration_pairs(pairs, 2, seed=3)  # deterministic
    assert len(calibration_pairs(pairs, 99)) == 40


def test_weights_come_from_the_package() -> None:
    path = smollm2_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 90_000_000
    assert path.read_bytes()[:4] == b"GGUF"


def test_encode_item_marks_the_program_and_cuts_from_the_left(smollm2_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    program = "def f(x):\n    return x * 2\n"
    ids, start = encode_item(tok, "Double x.", program, 1024)
    assert tok.decode(ids[start:]).startswith(program)
    assert "Double" in tok.decode(ids[:start])
    cut, cut_start = encode_item(tok, "Double x. " * 400, program, 64)
    assert len(cut) == 64 and tok.decode(cut[cut_start:]).startswith(program)
    assert cut[cut_start:] == ids[start:]  # the program survives whole

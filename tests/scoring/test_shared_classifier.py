"""Decoder classifier RMs (AceCodeRM-style: Qwen2/Llama + a score head on the last token) get the
prefix-shared forward too: same scores as the unshared forward, tiny Qwen2 then real SmolLM2
weights under a seeded head."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.scoring.chat import ItemEncoder, as_messages
from service.scoring.engines.base import Encoded
from service.scoring.engines.shared_forward import SharedPlan
from service.scoring.engines.torch import TorchEngine
from tests.scoring.conftest import load_options
from tests.scoring.test_shared_forward import PROMPT, RESPONSES, TOL


def _engines(path: Path, padding_side: str = "right") -> tuple[TorchEngine, TorchEngine]:
    plain = TorchEngine(load_options("plain", path, padding_side=padding_side))
    shared = TorchEngine(load_options("shared", path, shared_prefix_tokens=16))
    return plain, shared


def _items(engine: TorchEngine) -> list[Encoded]:
    other = "Write is_prime(n) that says whether n is prime."
    pairs = [(PROMPT, r) for r in RESPONSES] + [
        (other, "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, n))\n"),
        (other, "def is_prime(n):\n    return n == 2\n"),
        ("Write noop().", "def noop():\n    pass\n")]  # a one-candidate group
    enc = ItemEncoder(engine.tokenizer, engine.info.max_length)
    items = [enc.encode(as_messages(q, r)) for q, r in pairs]
    return [items[i] for i in (5, 0, 7, 3, 1, 6, 2, 4)]  # interleaved prompts


def _close(a: list[float], b: list[float]) -> None:
    assert len(a) == len(b)
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= TOL, (a, b)
    assert len({round(x, 3) for x in a}) > 1, "all scores alike: the check proves nothing"


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("padded", [False, True])
def test_classifier_shared_equals_unshared(tiny_qwen2_dir: Path, padding_side: str,
                                           padded: bool) -> None:
    plain, shared = _engines(tiny_qwen2_dir, padding_side)
    shared.padded = padded  # padded: the continuations of a group run as one forward
    items = _items(plain)
    prepared = shared.prepare(items)
    assert isinstance(prepared, SharedPlan)
    assert sorted(len(g.members) for g in prepared.groups) == [1, 2, 5]
    want = plain.run(plain.prepare(items))
    _close(shared.run(prepared), want)
    # tiny and truncated items, alone and together
    odd = [Encoded([7]), Encoded([7, 8]), *items[:3]]
    _close(shared.run(shared.prepare(odd)), plain.run(plain.prepare(odd)))


def test_classifier_real_weights_shared_equals_unshared(smollm2_dir: Path) -> None:
    # SmolLM2-135M's real decoder body, read as a sequence classifier (seeded score head)
    plain, shared = _engines(smollm2_dir)
    assert plain.decoder and shared.shared_prefix_tokens == 16
    items = _items(plain)
    prepared = shared.prepare(items)
    assert isinstance(prepared, SharedPlan) and len(prepared.groups) == 3
    _close(shared.run(prepared), plain.run(plain.prepare(items)))


def test_encoders_are_never_shared(tiny_bert_dir: Path) -> None:
    engine = TorchEngine(load_options("bert", tiny_bert_dir, shared_prefix_tokens=16))
    assert engine.shared_prefix_tokens == 0  # bidirectional: a prefix's states depend on the rest

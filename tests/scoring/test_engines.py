"""Real weights on CPU: scores do not depend on batch company, padding side or batch size."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from service.scoring.chat import ItemEncoder
from service.scoring.engines.torch import TorchEngine
from service.scoring.models import BatchLimits, ModelRegistry
from tests.scoring.conftest import load_options

TOL = 1e-3  # fp32 contract (API.md)


def mixed_items(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """Chat items of very different lengths."""
    rng = random.Random(seed)
    words = ["def", "return", "for", "in", "range", "if", "else", "while", "lambda", "yield", "sum", "len", "print", "x", "y", "total"]
    out = []
    for _ in range(n):
        prompt = " ".join(rng.choices(words, k=rng.randint(1, 20)))
        code = " ".join(rng.choices(words, k=rng.choice([1, 4, 12, 40])))
        out.append([{"role": "user", "content": prompt}, {"role": "assistant", "content": code}])
    return out


def alone_vs_batched(engine: TorchEngine, items: list[list[dict[str, str]]]) -> float:
    encoder = ItemEncoder(engine.tokenizer, engine.info.max_length)
    encoded = [encoder.encode(i) for i in items]
    assert len({len(e) for e in encoded}) > 3  # really mixed lengths
    alone = [engine.run(engine.prepare([e]))[0] for e in encoded]
    batched = engine.run(engine.prepare(encoded))
    halves = engine.run(engine.prepare(encoded[::2])) + engine.run(engine.prepare(encoded[1::2]))
    regrouped = [*halves[0::1]]
    order = list(range(0, len(encoded), 2)) + list(range(1, len(encoded), 2))
    worst = max(abs(a - b) for a, b in zip(alone, batched, strict=True))
    for pos, idx in enumerate(order):
        worst = max(worst, abs(regrouped[pos] - alone[idx]))
    assert len(set(round(s, 4) for s in alone)) > 1  # the model is not constant
    return worst


@pytest.mark.parametrize("side", ["right", "left"])
def test_decoder_padding_invariance(tiny_qwen2_dir: Path, side: str) -> None:
    engine = TorchEngine(load_options("q", tiny_qwen2_dir, padding_side=side))
    assert engine.decoder and engine.padding_side == side
    assert alone_vs_batched(engine, mixed_items(8)) <= TOL


def test_encoder_padding_invariance(tiny_bert_dir: Path) -> None:
    engine = TorchEngine(load_options("b", tiny_bert_dir, padding_side="left"))
    assert not engine.decoder and engine.padding_side == "right"  # BERT pools [CLS] at 0
    assert alone_vs_batched(engine, mixed_items(8)) <= TOL


def test_minilm_padding_invariance(minilm_dir: Path) -> None:
    engine = TorchEngine(load_options("minilm", minilm_dir))
    assert engine.info.max_length == 512 and engine.info.parameters > 20_000_000
    assert alone_vs_batched(engine, mixed_items(6, seed=3)) <= TOL


async def test_batcher_scores_match_alone(tiny_qwen2_dir: Path) -> None:
    """Through the real batcher: many concurrent requests vs. each item scored alone."""
    registry = ModelRegistry([load_options("q", tiny_qwen2_dir)],
                             limits=BatchLimits(max_batch_tokens=2048, max_batch_requests=8))
    await registry.start()
    try:
        scorer = registry.get(None)
        items = mixed_items(16, seed=7)
        alone = [(await scorer.score([i])).scores[0] for i in items]
        together = await asyncio.gather(*(scorer.score([i]) for i in items))
        bulk = await scorer.score(items)
    finally:
        await registry.aclose()
    for a, t, b in zip(alone, together, bulk.scores, strict=True):
        assert abs(a - t.scores[0]) <= TOL and abs(a - b) <= TOL
    assert bulk.tokens > 0 and set(bulk.timings) == {"tokenize", "queue", "inference", "total"}


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "minilm_dir"])
def test_packed_bert_matches_the_padded_forward(fixture: str,
                                                request: pytest.FixtureRequest) -> None:
    """The padding-free path scores as HF's own forward does, alone and in any company."""
    path = request.getfixturevalue(fixture)
    packed = TorchEngine(load_options("p", path, packed=True))
    padded = TorchEngine(load_options("p", path))
    assert not packed.padded and padded.padded  # the batcher then budgets the sum of lengths
    items = mixed_items(8, seed=5)
    encoder = ItemEncoder(packed.tokenizer, packed.info.max_length)
    encoded = [encoder.encode(i) for i in items]
    reference = [padded.run(padded.prepare([e]))[0] for e in encoded]
    together = packed.run(packed.prepare(encoded))
    assert max(abs(a - b) for a, b in zip(reference, together, strict=True)) <= 1e-4
    assert alone_vs_batched(packed, items) <= TOL


def test_packing_is_refused_for_decoders(tiny_qwen2_dir: Path) -> None:
    engine = TorchEngine(load_options("q", tiny_qwen2_dir, packed=True))
    assert engine.padded  # no packed forward for Qwen2: padded rows as before
    assert alone_vs_batched(engine, mixed_items(6)) <= TOL


async def test_packed_batcher_on_cpu_budget(tiny_bert_dir: Path) -> None:
    """Through the real batcher: packed batches stay under the CPU budget and match alone."""
    registry = ModelRegistry([load_options("b", tiny_bert_dir, packed=True)],
                             limits=BatchLimits(max_batch_tokens=4096, max_batch_tokens_cpu=300,
                                                max_batch_requests=16))
    await registry.start()
    try:
        scorer = registry.get(None)
        assert not scorer.engine.padded and scorer._batcher.max_batch_tokens == 300
        items = mixed_items(16, seed=11)
        alone = [(await scorer.score([i])).scores[0] for i in items]
        together = await asyncio.gather(*(scorer.score([i]) for i in items))
    finally:
        await registry.aclose()
    assert max(abs(a - t.scores[0]) for a, t in zip(alone, together, strict=True)) <= TOL

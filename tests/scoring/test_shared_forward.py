"""The prefix-shared forward gives the unshared forward's scores (tiny LM, then SmolLM2)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.scoring.batcher import Batcher
from service.scoring.chat import ItemEncoder, as_messages
from service.scoring.engines.base import Encoded
from service.scoring.engines.likelihood import LikelihoodEngine
from service.scoring.engines.shared_forward import SharedPlan
from tests.scoring.conftest import load_options

PROMPT = ("def count_vowels(s: str) -> int:\n    \"\"\"Return the number of vowels in s.\n"
          "    >>> count_vowels('hello')\n    2\n    \"\"\"\n")
RESPONSES = [
    "    return sum(c in 'aeiou' for c in s)\n",
    "    return sum(1 for c in s.lower() if c in 'aeiou')\n",
    "    n = 0\n    for c in s:\n        if c in 'aeiou':\n            n += 1\n    return n\n",
    "    return len([c for c in s if c in 'AEIOUaeiou'])\n",
    "    return 0\n",
]
TOL = 1e-4


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.model_builders import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


def _engines(path: Path, max_length: int = 512) -> tuple[LikelihoodEngine, LikelihoodEngine]:
    plain = LikelihoodEngine(load_options("plain", path, max_length_tokens=max_length))
    shared = LikelihoodEngine(load_options("shared", path, max_length_tokens=max_length,
                                           shared_prefix_tokens=16))
    return plain, shared


def _encode(engine: LikelihoodEngine, pairs: list[tuple[str, str]],
            max_length: int | None = None) -> list[Encoded]:
    enc = ItemEncoder(engine.tokenizer, max_length or engine.info.max_length,
                      mark_response=True)
    return [enc.encode(as_messages(q, r)) for q, r in pairs]


def _close(a: list[float], b: list[float]) -> None:
    assert len(a) == len(b)
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= TOL, (a, b)


def _mixed(engine: LikelihoodEngine) -> list[Encoded]:
    other = "Write is_prime(n) that says whether n is prime."
    pairs = [(PROMPT, r) for r in RESPONSES] + [
        (other, "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, n))\n"),
        (other, "def is_prime(n):\n    return n == 2\n"),
        ("Write noop().", "def noop():\n    pass\n")]  # a one-candidate group
    items = _encode(engine, pairs)
    return [items[i] for i in (5, 0, 7, 3, 1, 6, 2, 4)]  # interleaved prompts


@pytest.mark.parametrize("padded", [False, True])
def test_shared_equals_unshared_on_mixed_prefixes(tiny_lm_dir: Path, padded: bool) -> None:
    plain, shared = _engines(tiny_lm_dir)
    plain.padded = shared.padded = padded  # padded: the GPU layout (one forward per group)
    items = _mixed(plain)
    prepared = shared.prepare(items)
    assert isinstance(prepared, SharedPlan)
    sizes = sorted(len(g.members) for g in prepared.groups)
    assert sizes == [1, 2, 5] and all(g.shared >= 16 for g in prepared.groups
                                      if len(g.members) > 1)
    want = plain.run(plain.prepare(items))
    _close(shared.run(prepared), want)
    # each item alone scores the same too (a batch never changes a score)
    _close([shared.run(shared.prepare([it]))[0] for it in items], want)


def test_truncated_items_and_tiny_items(tiny_lm_dir: Path) -> None:
    plain, shared = _engines(tiny_lm_dir)
    full = _encode(plain, [(PROMPT, r) for r in RESPONSES])
    # cut from the left: each item keeps a different part of the prompt, so they share less
    cut = _encode(plain, [(PROMPT, r) for r in RESPONSES], max_length=min(map(len, full)) - 5)
    assert all(e.truncated for e in cut)
    items = [*cut, Encoded([7]), Encoded([7, 8]), Encoded([7, 8, 9], score_from=2), *full[:2]]
    _close(shared.run(shared.prepare(items)), plain.run(plain.prepare(items)))


async def test_a_group_split_across_batches(tiny_lm_dir: Path) -> None:
    plain, shared = _engines(tiny_lm_dir)
    items = _encode(plain, [(PROMPT, r) for r in RESPONSES * 3])
    want = plain.run(plain.prepare(items))
    prompt_len = items[0].score_from
    # room for the prompt once plus a few continuations: the group needs several batches
    budget = max(len(e) for e in items) + 2 * max(len(e) - prompt_len for e in items)
    batcher = Batcher(shared, max_batch_tokens=budget, max_batch_requests=64,
                      max_queue_items=100)
    batcher.max_batch_tokens = budget  # below the model's max length, on purpose
    batcher.start()
    try:
        first, second = await asyncio.gather(batcher.submit(items[:7]),
                                             batcher.submit(items[7:]))
    finally:
        await batcher.aclose()
    assert first.batches + second.batches > 2
    _close(first.scores + second.scores, want)


def test_real_weights_shared_equals_unshared(smollm2_dir: Path) -> None:
    plain, shared = _engines(smollm2_dir, max_length=1024)
    items = _mixed(plain)
    prepared = shared.prepare(items)
    assert isinstance(prepared, SharedPlan) and len(prepared.groups) == 3
    want = plain.run(plain.prepare(items))
    _close(shared.run(prepared), want)
    shared.padded = plain.padded = True
    _close(shared.run(shared.prepare(items)), plain.run(plain.prepare(items)))

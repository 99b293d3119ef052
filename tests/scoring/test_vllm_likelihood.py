"""The vLLM likelihood engine's reading of `prompt_logprobs`, checked on CPU: real SmolLM2
log-probabilities laid out as vLLM returns them must give the torch engine's scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from service.scoring.chat import ItemEncoder, as_messages
from service.scoring.engines.base import Encoded
from service.scoring.engines.likelihood import LikelihoodEngine, causal_ids
from service.scoring.engines.vllm_likelihood import mean_logprob
from tests.scoring.conftest import load_options

QUESTION = "Write add(a, b) that returns the sum of a and b."


@dataclass
class Logprob:  # the shape of vllm.logprobs.Logprob
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


def vllm_shaped(model: torch.nn.Module, ids: list[int]) -> list[dict[int, Logprob] | None]:
    """What vLLM returns as `prompt_logprobs` with prompt_logprobs=0: None for position 0, then
    {the prompt token there: its log-probability given what comes before it}."""
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logps = torch.log_softmax(logits, dim=-1)
    return [None] + [{ids[i]: Logprob(float(logps[i - 1, ids[i]]), rank=1)}
                     for i in range(1, len(ids))]


@pytest.fixture(scope="module")
def engine(smollm2_dir: Path) -> LikelihoodEngine:
    return LikelihoodEngine(load_options("smol", smollm2_dir, max_length_tokens=512))


def test_scores_read_from_prompt_logprobs_match_the_torch_engine(
        engine: LikelihoodEngine) -> None:
    enc = ItemEncoder(engine.tokenizer, 512, mark_response=True)
    items = [enc.encode(as_messages(QUESTION, "def add(a, b):\n    return a + b\n")),
             enc.encode(as_messages(QUESTION, "def add(a, b):\n    return a - b\n")),
             enc.encode(as_messages(QUESTION * 40, "def add(a, b): return a+b")),  # truncated
             enc.encode([{"role": "user", "content": QUESTION}]),  # nothing marked: all scored
             Encoded([engine.pad_id + 7]),  # one token: scored against itself
             Encoded([11, 12, 13], score_from=9)]  # past the end: the last token only
    assert items[2].truncated and items[0].score_from > 0
    want = engine.run(engine.prepare(items))
    got = [mean_logprob(e, vllm_shaped(engine.model, causal_ids(e)[0])) for e in items]
    assert got == pytest.approx(want, abs=1e-4)
    assert got[0] > got[1]  # and the measure still tells right from wrong


def test_a_position_without_its_token_is_an_error_not_a_guess() -> None:
    enc = Encoded([3, 4, 5], score_from=1)
    with pytest.raises(RuntimeError, match="position 2"):
        mean_logprob(enc, [None, {4: Logprob(-1.0)}, {9: Logprob(-2.0)}])
    assert mean_logprob(enc, [None, {4: Logprob(-1.0)}, {5: Logprob(-3.0)}]) == -2.0
    assert causal_ids(Encoded([8])) == ([8, 8], range(1, 2))
    assert causal_ids(enc) == ([3, 4, 5], range(1, 3))

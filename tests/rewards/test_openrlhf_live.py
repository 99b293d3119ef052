"""OpenRLHF's own remote-reward client code against a live server (openrlhf installed --no-deps).

We import `openrlhf.utils.agent` (its real SingleTurnAgentExecutor, which decodes the rollout,
posts it with aiohttp and reads `rewards`/`scores`/`extra_logs`); only the LLM engine and the
tokenizer are stand-ins, since no policy model runs here.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

# installed by `make test` (pip install --no-deps openrlhf): a missing install fails, not skips
import openrlhf.utils.agent as agent
import pytest
import torch

from tests.rewards.conftest import CORRECT, QUESTION, TESTS, WRONG

PROMPT = f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"


class CharTokenizer:
    """Character-level stand-in for an HF tokenizer: lossless, so the decoded text is exact."""

    def __call__(self, text: str, add_special_tokens: bool = False,
                 return_tensors: str = "pt") -> dict[str, torch.Tensor]:
        return {"input_ids": torch.tensor([[ord(c) for c in text]])}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(chr(i) for i in ids)


@dataclass
class _Output:
    token_ids: list[int]
    text: str
    finish_reason: str = "stop"
    logprobs: Any = None


@dataclass
class _RequestOutput:
    outputs: list[_Output]


class ScriptedEngine:
    """Stand-in for OpenRLHF's async vLLM engine: 'generates' the response it was given."""

    def __init__(self, response: str) -> None:
        self.response = response

    async def generate(self, prompt_ids: list[int], params: Any, multi_modal_data: Any = None,
                       ) -> _RequestOutput:
        text = self.response + "<|im_end|>"
        return _RequestOutput([_Output([ord(c) for c in text], text)])


@dataclass
class SamplingParams:
    max_tokens: int | None = 512
    logprobs: int | None = None


async def _rollout(url: str, response: str, label: Any) -> dict[str, Any]:
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=url)
    out: dict[str, Any] = await executor.execute(
        PROMPT, label, SamplingParams(), 4096, CharTokenizer(), ScriptedEngine(response))
    return out


def test_openrlhf_single_turn_executor_gets_one_reward_per_rollout(live_url: str) -> None:
    url = live_url + "/get_reward?mode=tests"
    label = json.dumps(TESTS)

    async def many() -> list[dict[str, Any]]:  # concurrent rollouts, one query per request
        return await asyncio.gather(*[_rollout(url, r, label) for r in [CORRECT, WRONG] * 8])

    outs = asyncio.run(many())
    for out, expected in zip(outs, [1.0, 0.25] * 8, strict=True):
        assert out["reward"] == [expected]
        assert out["scores"] == [expected]
        logs = out["extra_logs"]
        assert logs["pass_rate"] == [expected]
        for value in logs.values():  # what OpenRLHF's samples generator does with each value
            assert torch.tensor([value]).dtype == torch.float32


def test_openrlhf_hybrid_reward_through_round_robin_urls(live_url: str) -> None:
    urls = [live_url + "/get_reward", live_url + "/get_reward?mode=hybrid"]
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=urls)
    query = PROMPT + CORRECT + "<|im_end|>"
    infos = asyncio.run(executor._fetch_rewards_via_http([query], [PROMPT], [TESTS]))
    assert len(infos) == 1
    body = infos[0]
    assert len(body["rewards"]) == 1
    assert set(body["extra_logs"]) >= {"rm_score", "pass_rate", "all_pass"}
    assert body["scores"] == [1.0]  # pass rate where tests ran
    assert body["details"][0]["format"] == "prompt_prefix"


def test_openrlhf_reward_func_file_forwards_to_server(live_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import codereward_client.openrlhf as adapter

    monkeypatch.setenv("CODEREWARD_URL", live_url)
    monkeypatch.setenv("CODEREWARD_REWARD_MODE", "tests")
    # OpenRLHF loads a `.py` remote_rm_url as a fresh module and calls its reward_func
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=adapter.__file__)
    out = asyncio.run(_rollout_with(executor, WRONG, TESTS))
    assert out["reward"] == [0.25]
    assert out["extra_logs"]["all_pass"] == [0.0]


async def _rollout_with(executor: Any, response: str, label: Any) -> dict[str, Any]:
    out: dict[str, Any] = await executor.execute(
        PROMPT, label, SamplingParams(), 4096, CharTokenizer(), ScriptedEngine(response))
    return out

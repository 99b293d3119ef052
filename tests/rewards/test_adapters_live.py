"""The Python client and the verl / TRL adapters against a live server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from codereward_client import AsyncCodeRewardClient, CodeRewardClient, CodeRewardError
from codereward_client.trl import make_reward_func
from codereward_client.verl import compute_score, compute_score_async, compute_score_batch
from tests.rewards.conftest import CORRECT, QUESTION, TESTS, WRONG


def test_client_get_reward_and_execute_tests(live_url: str) -> None:
    with CodeRewardClient(live_url) as client:
        body = client.get_reward([QUESTION + "\n" + CORRECT], [QUESTION], [TESTS], mode="tests")
        assert body["rewards"] == [1.0]
        results = client.execute_tests([{"code": "def add(a, b):\n    return a + b",
                                         "tests": TESTS}])
        assert results[0]["pass_rate"] == 1.0
        with pytest.raises(CodeRewardError) as err:
            client.get_reward(["x"], labels=["not json"], mode="tests")
        assert err.value.status_code == 422


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
def test_async_client_many_concurrent_single_queries(live_url: str, http: str) -> None:
    async def run() -> list[float]:
        async with AsyncCodeRewardClient(live_url, max_connections=8, http=http) as client:
            bodies = await asyncio.gather(*[
                client.get_reward([r], None, [TESTS], mode="tests") for r in [CORRECT, WRONG] * 6])
        return [b["rewards"][0] for b in bodies]

    assert asyncio.run(run()) == [1.0, 0.25] * 6


def test_verl_compute_score_tests_and_hybrid(live_url: str) -> None:
    info = {"question": QUESTION, "index": 0}
    good = compute_score("acecode", CORRECT, json.dumps(TESTS), info, url=live_url, mode="tests")
    bad = compute_score("acecode", WRONG, TESTS, info, url=live_url, mode="tests")
    assert good == {"score": 1.0, "rm_score": 0.0, "pass_rate": 1.0, "all_pass": 1.0,
                    "error": 0.0}
    assert bad["score"] == 0.25 and bad["all_pass"] == 0.0
    hybrid = compute_score("acecode", CORRECT, {"test_cases": TESTS}, info, url=live_url,
                           mode="hybrid")
    assert set(hybrid) == set(good)  # verl stacks these keys across the batch
    assert hybrid["pass_rate"] == 1.0
    assert hybrid["score"] > 1.0  # pass rate plus the weighted model term
    assert hybrid["rm_score"] != 0.0


def test_verl_batch_matches_single_calls_in_order(live_url: str) -> None:
    n = 7
    solutions = [CORRECT if i % 3 else WRONG for i in range(n)]
    rows = compute_score_batch(["acecode"] * n, solutions, [TESTS] * n,
                               [{"question": QUESTION}] * n, url=live_url, mode="hybrid",
                               chunk_size=2)
    singles = [compute_score("acecode", s, TESTS, {"question": QUESTION}, url=live_url,
                             mode="hybrid") for s in solutions]
    assert [r["pass_rate"] for r in rows] == [1.0 if i % 3 else 0.25 for i in range(n)]
    for row, single in zip(rows, singles, strict=True):
        assert row["score"] == pytest.approx(single["score"], abs=1e-3)


def test_verl_async_and_fallback(live_url: str) -> None:
    row = asyncio.run(compute_score_async("acecode", CORRECT, TESTS, None, url=live_url,
                                          mode="tests"))
    assert row["score"] == 1.0
    failed = compute_score("acecode", CORRECT, "not json", None, url=live_url, mode="tests",
                           fallback_score=-1.0)
    assert failed["score"] == -1.0 and failed["error"] == 1.0
    with pytest.raises(CodeRewardError):
        compute_score("acecode", CORRECT, "not json", None, url=live_url, mode="tests")


def test_trl_reward_func_plain_and_conversational(live_url: str) -> None:
    func = make_reward_func(live_url, mode="tests")
    assert func.__name__ == "codereward_tests"
    plain = func([QUESTION, QUESTION], [CORRECT, WRONG], tests=[TESTS, json.dumps(TESTS)])
    assert plain == [1.0, 0.25]
    prompts: list[Any] = [[{"role": "user", "content": QUESTION}]] * 2
    completions = [[{"role": "assistant", "content": CORRECT}],
                   [{"role": "assistant", "content": WRONG}]]
    rows = [{"id": "evol_1", "test_cases": TESTS}] * 2
    conversational = func(prompts, completions, test_cases=rows, trainer_state=None)
    assert conversational == [1.0, 0.25]


def test_trl_hybrid_scores_the_recovered_question(live_url: str) -> None:
    func = make_reward_func(live_url, mode="hybrid", tests_column="tests")
    prompts: list[Any] = [[{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": QUESTION}]]
    with CodeRewardClient(live_url) as client:
        direct = client.get_reward([QUESTION + CORRECT], [QUESTION], [TESTS], mode="hybrid")
    got = func(prompts, [[{"role": "assistant", "content": CORRECT}]], tests=[TESTS])
    # the system turn is dropped server-side, so both recover the same (user, assistant) pair
    assert got == pytest.approx(direct["rewards"], abs=1e-3)
    with pytest.raises(KeyError):
        func(prompts, [CORRECT], other=[1])
    quiet = make_reward_func(live_url, mode="tests", raise_errors=False)
    assert quiet([QUESTION], [CORRECT], tests=["not json"]) == [None]

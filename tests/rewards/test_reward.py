"""Reward modes, label parsing and the /get_reward route, over fakes of the model and sandbox."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sandbox_worker.protocol import CallTests, StdioTests
from service.config import Settings
from service.errors import Unprocessable
from service.http.app import create_app
from service.rewards.modes import parse_tests
from tests.rewards.fakes import FakeRegistry, PassIfDefined

PROMPT = "<|im_start|>user\nWrite add(a, b).<|im_end|>\n<|im_start|>assistant\n"
GOOD = "```python\ndef add(a, b):\n    return a + b\n```<|im_end|>"
BAD = "```python\ndef sub(a, b):\n    return a - b\n```<|im_end|>"
TESTS = ["assert add(1, 2) == 3", "assert sub(1, 2) == -1"]


@pytest.mark.parametrize("label, expected", [
    (TESTS, TESTS),
    (json.dumps(TESTS), TESTS),
    ({"id": "evol_1", "test_cases": TESTS, "question": "q"}, TESTS),
    (json.dumps({"test_cases": TESTS}), TESTS),
    ({"tests": TESTS}, TESTS),
    ("assert add(1, 2) == 3\nassert add(0, 0) == 0", ["assert add(1, 2) == 3",
                                                      "assert add(0, 0) == 0"]),
    ("", None), (None, None), ([], None),
])
def test_parse_tests_accepts_lists_rows_and_assert_lines(label: Any, expected: Any) -> None:
    assert parse_tests(label, 0) == expected


def test_parse_tests_reads_published_stdio_and_call_layouts() -> None:
    apps = parse_tests(json.dumps({"inputs": ["1 2"], "outputs": ["3"]}), 0)
    assert isinstance(apps, StdioTests) and apps.cases[0].output == "3"
    verl = parse_tests({"reward_model": {"ground_truth": json.dumps(
        {"fn_name": "f", "inputs": [[1]], "outputs": [[2]]})}}, 0)
    assert isinstance(verl, CallTests) and verl.fn_name == "f"


@pytest.mark.parametrize("label", ["not json", json.dumps({"inputs": ["1"], "outputs": []}),
                                   json.dumps({"inputs": [], "outputs": []}),
                                   [1, 2], json.dumps(["  "]), 42])
def test_parse_tests_rejects_malformed(label: Any) -> None:
    with pytest.raises(Unprocessable):
        parse_tests(label, 3)


@pytest.fixture
def client() -> Iterator[tuple[TestClient, FakeRegistry, PassIfDefined]]:
    registry, sandbox = FakeRegistry(), PassIfDefined()
    app = create_app(Settings(reward_mode="hybrid"), sandbox=sandbox, registry=registry)
    with TestClient(app) as http:
        yield http, registry, sandbox


def _post(http: TestClient, body: dict[str, Any], **params: str) -> Any:
    response = http.post("/get_reward", json=body, params=params)
    return response


def test_tests_mode_is_pass_rate(client: Any) -> None:
    http, registry, sandbox = client
    body = {"query": [PROMPT + GOOD, PROMPT + BAD], "prompts": [PROMPT, PROMPT],
            "labels": [TESTS, json.dumps(TESTS)], "mode": "tests"}
    out = _post(http, body).json()
    assert out["rewards"] == [0.5, 0.5]
    assert out["scores"] == [0.5, 0.5]
    assert out["extra_logs"]["pass_rate"] == [0.5, 0.5]
    assert "rm_score" not in out["extra_logs"]
    assert registry.scorer.items == []  # tests mode never touches the model
    assert sandbox.jobs[0].code == "def add(a, b):\n    return a + b"  # extracted from the fence
    assert sandbox.jobs[0].timeout_s == Settings().reward_test_timeout_s
    assert [d["format"] for d in out["details"]] == ["prompt_prefix", "prompt_prefix"]


def test_rm_mode_scores_recovered_turns(client: Any) -> None:
    http, registry, sandbox = client
    out = _post(http, {"query": [PROMPT + GOOD]}, mode="rm").json()  # ?mode= query parameter
    item = registry.scorer.items[0]
    assert item == [{"role": "user", "content": "Write add(a, b)."},
                    {"role": "assistant", "content": GOOD.removesuffix("<|im_end|>")}]
    assert out["rewards"] == out["scores"] == out["extra_logs"]["rm_score"]
    assert out["rewards"][0] == pytest.approx(len(item[1]["content"]) / 10)
    assert sandbox.jobs == []
    assert out["details"][0]["format"] == "chatml"


def test_hybrid_combines_weights_and_bonus() -> None:
    settings = Settings(reward_tests_weight=2.0, reward_rm_weight=0.5, reward_all_pass_bonus=1.0)
    registry = FakeRegistry()
    app = create_app(settings, sandbox=PassIfDefined(), registry=registry)
    with TestClient(app) as http:
        out = http.post("/get_reward", json={
            "query": [PROMPT + GOOD, PROMPT + GOOD, PROMPT + BAD],
            "labels": [["assert add(1, 2) == 3"], "", TESTS], "mode": "hybrid"}).json()
    rm = [len(m[-1]["content"]) / 10 for m in registry.scorer.items]
    sig = [1 / (1 + math.exp(-r)) for r in rm]
    assert out["rewards"] == pytest.approx([2.0 * 1.0 + 0.5 * sig[0] + 1.0,  # all pass: bonus
                                            0.5 * sig[1],  # no tests: model part only
                                            2.0 * 0.5 + 0.5 * sig[2]])  # 1 of 2 pass
    assert out["scores"] == pytest.approx([1.0, rm[1], 0.5])
    logs = out["extra_logs"]
    assert logs["has_tests"] == [1.0, 0.0, 1.0]
    assert logs["all_pass"] == [1.0, 0.0, 0.0]
    assert logs["rm_score"] == pytest.approx(rm)
    assert all(isinstance(v, float) for values in logs.values() for v in values)


def test_server_default_mode_applies(client: Any) -> None:
    http, _, _ = client
    out = _post(http, {"query": [PROMPT + GOOD], "labels": [TESTS]}).json()
    assert set(out["extra_logs"]) >= {"rm_score", "pass_rate"}  # hybrid is the default here


def test_no_code_and_syntax_error_score_zero(client: Any) -> None:
    http, _, sandbox = client
    out = _post(http, {"query": [PROMPT, PROMPT + "syntax error ("], "labels": [TESTS, TESTS],
                       "mode": "tests"}).json()
    assert out["rewards"] == [0.0, 0.0]
    assert [d["status"] for d in out["details"]] == ["no_code", "syntax_error"]
    assert len(sandbox.jobs) == 1  # an empty response is never executed


@pytest.mark.parametrize("body, status", [
    ({"query": ["x"], "labels": [""], "mode": "tests"}, 422),  # tests mode needs tests
    ({"query": ["x"], "labels": ["not json"], "mode": "hybrid"}, 422),
    ({"query": ["x"], "labels": [{"inputs": []}], "mode": "tests"}, 422),
    ({"query": ["x", "y"], "labels": [TESTS]}, 422),  # length mismatch
    ({"query": ["x"], "prompts": ["a", "b"]}, 422),
    ({"query": []}, 422),
    ({"query": ["x"], "mode": "magic"}, 422),
    ({"query": ["x"], "model": "nope", "mode": "rm"}, 404),
    ({"query": ["x"] * 1025}, 413),
    ({"query": ["x" * 200_001]}, 413),
])
def test_bad_requests_are_clear_4xx(client: Any, body: dict[str, Any], status: int) -> None:
    http, _, _ = client
    response = _post(http, body)
    assert response.status_code == status, response.text
    assert "detail" in response.json()


def test_extra_fields_from_trainers_are_ignored(client: Any) -> None:
    http, _, _ = client
    out = _post(http, {"query": [PROMPT + GOOD], "step": 3, "mode": "rm"})
    assert out.status_code == 200


def test_identical_programs_in_a_request_run_once(client: Any) -> None:
    http, _, sandbox = client
    body = {"query": [PROMPT + GOOD] * 3 + [PROMPT + BAD], "labels": [TESTS] * 4,
            "mode": "tests"}
    first = _post(http, body).json()
    second = _post(http, body).json()
    assert first["rewards"] == second["rewards"] == [0.5, 0.5, 0.5, 0.5]
    assert len(sandbox.jobs) == 2  # GOOD once, BAD once; the second request is all cache hits


@pytest.mark.parametrize("stop", [False, True])
def test_timeout_policy_setting_reaches_the_jobs(stop: bool) -> None:
    sandbox = PassIfDefined()
    settings = Settings(reward_stop_after_timeout=stop, reward_test_timeout_s=1.5)
    with TestClient(create_app(settings, sandbox=sandbox, registry=FakeRegistry())) as http:
        out = http.post("/get_reward", json={"query": [PROMPT + GOOD], "labels": [TESTS],
                                             "mode": "tests"})
    assert out.status_code == 200
    assert [(j.stop_after_timeout, j.timeout_s) for j in sandbox.jobs] == [(stop, 1.5)]

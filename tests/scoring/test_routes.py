"""POST /score, POST /rerank, GET /models over a real registry (tiny BERT + tiny Qwen2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.config import Settings
from service.http.app import create_app
from service.scoring.models import ModelRegistry
from tests.scoring.conftest import PassRateSandbox

ITEMS = [{"prompt": "Write add(a, b).", "response": "def add(a, b):\n    return a + b"},
         {"messages": [{"role": "user", "content": "Write add(a, b)."},
                       {"role": "assistant", "content": "def add(a, b):\n    return a - b"}]},
         {"prompt": "Reverse a string.", "response": "def rev(s):\n    return s[::-1]"}]
CANDIDATES = ["def f(x):\n    return x", "def f(x):\n    return 2 * x",
              "def f(x):\n    return x + 1", "def f(x):\n    return x * x"]


def client_for(registry: ModelRegistry, sandbox: Any = None,
               **settings: Any) -> httpx.AsyncClient:
    app = create_app(Settings(_env_file=None, **settings), registry=registry,
                     sandbox=sandbox or PassRateSandbox({}))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture
async def client(two_models: ModelRegistry) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(two_models, max_items=8, max_candidates=6,
                          max_text_chars=5000) as c:
        yield c


async def test_score_routes_models_and_reports_usage(client: httpx.AsyncClient) -> None:
    r = await client.post("/score", json={"items": ITEMS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "bert" and len(body["scores"]) == 3
    assert body["usage"]["tokens"] > 10 and body["usage"]["truncated"] == 0
    for header in ("x-total-time", "x-queue-time", "x-inference-time", "x-tokenization-time"):
        assert int(r.headers[header]) >= 0
    # item order is kept: scoring one item alone gives the same number
    one = await client.post("/score", json={"items": [ITEMS[2]]})
    assert one.json()["scores"][0] == pytest.approx(body["scores"][2], abs=1e-3)
    qwen = await client.post("/score", json={"items": ITEMS, "model": "qwen"})
    assert qwen.status_code == 200 and qwen.json()["model"] == "qwen"
    assert qwen.json()["scores"] != pytest.approx(body["scores"], abs=1e-3)
    missing = await client.post("/score", json={"items": ITEMS, "model": "nope"})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


async def test_score_limits_and_malformed_bodies(client: httpx.AsyncClient) -> None:
    assert (await client.post("/score", json={"items": []})).status_code == 400
    assert (await client.post("/score", json={"items": ITEMS * 3})).status_code == 413
    long = {"prompt": "x", "response": "y" * 5001}
    assert (await client.post("/score", json={"items": [long]})).status_code == 413
    for bad in ({"items": [{"prompt": "only a prompt"}]},
                {"items": [{"prompt": "p", "response": "r", "messages": []}]},
                {"items": [{"messages": []}]}, {"items": "nope"}, {},
                {"items": [{"prompt": 1, "response": "r"}]}):
        r = await client.post("/score", json=bad)
        assert r.status_code == 422, (bad, r.text)


async def test_truncated_items_are_counted(client: httpx.AsyncClient) -> None:
    long = {"prompt": "p", "response": "token " * 400}  # tiny BERT holds 128 positions
    r = await client.post("/score", json={"items": [long, ITEMS[0]]})
    assert r.status_code == 200 and r.json()["usage"]["truncated"] == 1


async def test_models_lists_loaded_models(client: httpx.AsyncClient) -> None:
    r = await client.get("/models")
    assert r.status_code == 200
    body = r.json()
    assert body["default"] == "bert"
    by_name = {m["name"]: m for m in body["models"]}
    assert by_name["bert"]["max_length"] == 128 and by_name["bert"]["default"]
    assert by_name["qwen"]["chat_template"] and by_name["qwen"]["backend"] == "torch"
    assert by_name["qwen"]["dtype"] == "float32" and by_name["qwen"]["parameters"] > 0


async def test_rerank_without_tests_orders_by_score(client: httpx.AsyncClient) -> None:
    r = await client.post("/rerank", json={"prompt": "double x", "candidates": CANDIDATES,
                                           "model": "qwen"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    scores = [x["score"] for x in results]
    assert scores == sorted(scores, reverse=True)
    assert sorted(x["index"] for x in results) == [0, 1, 2, 3]
    assert all(x["pass_rate"] is None for x in results)
    top = await client.post("/rerank", json={"prompt": "double x", "candidates": CANDIDATES,
                                             "model": "qwen", "top_k": 2})
    assert top.json()["results"] == results[:2]
    assert (await client.post("/rerank", json={"prompt": "p", "candidates": []})).status_code == 400
    assert (await client.post("/rerank", json={"prompt": "p",
                                               "candidates": ["x"] * 7})).status_code == 413
    assert (await client.post("/rerank", json={"prompt": "p", "candidates": ["x"],
                                               "top_k": 0})).status_code == 422


async def test_rerank_with_tests_orders_by_pass_rate_then_score(
        two_models: ModelRegistry) -> None:
    rates = {CANDIDATES[0]: 0.5, CANDIDATES[1]: 1.0, CANDIDATES[2]: 0.5, CANDIDATES[3]: 0.0}
    sandbox = PassRateSandbox(rates)
    tests = ["assert f(1) == 2", "assert f(2) == 4"]
    async with client_for(two_models, sandbox) as client:
        r = await client.post("/rerank", json={"prompt": "double x", "candidates": CANDIDATES,
                                               "tests": tests, "model": "qwen"})
        plain = await client.post("/rerank", json={"prompt": "double x",
                                                   "candidates": CANDIDATES, "model": "qwen"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["pass_rate"] for x in results] == [1.0, 0.5, 0.5, 0.0]
    assert results[0]["index"] == 1 and results[3]["index"] == 3
    middle = results[1:3]
    assert middle[0]["score"] >= middle[1]["score"]  # equal pass rates: higher score first
    assert {x["index"] for x in middle} == {0, 2}
    score_of = {x["index"]: x["score"] for x in plain.json()["results"]}
    assert all(x["score"] == pytest.approx(score_of[x["index"]], abs=1e-3) for x in results)
    assert [job.code for job in sandbox.jobs] == CANDIDATES
    assert all(job.tests == tests for job in sandbox.jobs)

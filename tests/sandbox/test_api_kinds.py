"""The stdio and call kinds and the `language` field through the real app and LocalSandbox:
today's assert requests unchanged, clear 4xx for what cannot run, GET /languages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox_worker import languages
from sandbox_worker.executor import Executor
from service.config import Settings
from service.execution.sandbox import LocalSandbox
from service.http.app import create_app
from service.metrics import Metrics
from tests.http.fakes import FakeRegistry


@pytest.fixture
async def client(executor: Executor) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(_env_file=None, max_tests=8, max_case_chars=1000)  # type: ignore[call-arg]
    metrics = Metrics()
    sandbox = LocalSandbox(executor, workers=2, max_pending=100, metrics=metrics)
    app = create_app(settings, sandbox=sandbox, registry=FakeRegistry(), metrics=metrics)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 timeout=120) as c:
        yield c


STDIO = {"kind": "stdio", "cases": [{"input": "1 2\n", "output": "3\n"},
                                    {"input": "2 2\n", "output": "5\n"}]}
PY_SUM = "print(sum(map(int, input().split())))"
CPP_SUM = "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b;}"


async def _execute(client: httpx.AsyncClient, *subs: dict[str, object]) -> httpx.Response:
    return await client.post("/execute-tests", json={"submissions": list(subs)})


async def test_stdio_call_and_asserts_in_one_request(client: httpx.AsyncClient) -> None:
    call = {"kind": "call", "fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [3, 8]}
    r = await _execute(
        client,
        {"id": "py", "code": PY_SUM, "tests": STDIO},
        {"id": "call", "code": "def add(a, b):\n    return a + b", "tests": call},
        {"id": "asserts", "code": "def add(a, b):\n    return a + b",
         "tests": ["assert add(1, 2) == 3"]})
    assert r.status_code == 200, r.text
    results = {x["id"]: x for x in r.json()["results"]}
    assert [t["status"] for t in results["py"]["tests"]] == ["passed", "failed"]
    assert results["call"]["passed"] == 1 and results["call"]["total"] == 2
    assert results["asserts"]["pass_rate"] == 1.0


async def test_compiled_language_and_compile_error(client: httpx.AsyncClient) -> None:
    if languages.version("cpp") is None:
        pytest.skip("no g++ here (make toolchains)")
    r = await _execute(client, {"code": CPP_SUM, "tests": STDIO, "language": "C++"},
                       {"code": "int main( {", "tests": STDIO, "language": "cpp"})
    assert r.status_code == 200, r.text
    ok, bad = r.json()["results"]
    assert ok["passed"] == 1 and ok["status"] == "ok"
    assert bad["status"] == "compile_error" and bad["pass_rate"] == 0.0


@pytest.mark.parametrize(("sub", "status", "words"), [
    ({"code": "x", "tests": STDIO, "language": "cobol"}, 422, "unknown language"),
    ({"code": "x", "tests": ["assert True"], "language": "cpp"}, 422, "Python programs only"),
    ({"code": "x", "tests": {"kind": "call", "fn_name": "f", "inputs": [[1]], "outputs": []}},
     422, "one output per input"),
    ({"code": "x", "tests": {"kind": "call", "fn_name": "f()", "inputs": [], "outputs": []}},
     422, "identifier"),
    ({"code": "x", "tests": {"kind": "unittest", "module": "import unittest"}}, 422,
     "defines no tests"),
    ({"code": "x", "tests": {"kind": "pytest", "module": "def test_a(:"}}, 422,
     "defines no tests"),
    ({"code": "x", "language": "cpp", "tests": {"kind": "pytest", "module": "def test_a(): pass"}},
     422, "Python programs only"),
    ({"code": "x", "tests": {"kind": "stdio", "cases": [{"input": "x" * 2000, "output": ""}]}},
     413, "over the limit"),
    ({"code": "x", "tests": {"kind": "stdio", "cases": [{"input": "", "output": ""}] * 9}},
     413, "9 tests"),
    ({"code": "x", "tests": {"kind": "stdio", "cases": [{"input": 1}]}}, 422, ""),
    ({"code": "x", "tests": {"kind": "nope"}}, 422, ""),
])
async def test_bad_test_objects_are_clear_4xx(client: httpx.AsyncClient, sub: dict[str, object],
                                              status: int, words: str) -> None:
    r = await _execute(client, sub)
    assert r.status_code == status, r.text
    assert words in r.text


async def test_languages_endpoint_lists_what_the_sandbox_found(client: httpx.AsyncClient) -> None:
    r = await client.get("/languages")
    assert r.status_code == 200
    body = r.json()
    names = {card["name"]: card for card in body["languages"]}
    assert body["known"] is True and "python" in names
    assert names["python"]["kinds"] == ["asserts", "stdio", "call", "unittest", "pytest"]
    assert set(names) == set(languages.available())
    ready = await client.get("/readyz")
    assert "python" in ready.json()["sandbox"]["languages"]


async def test_get_reward_with_published_stdio_and_call_labels(client: httpx.AsyncClient) -> None:
    import json as _json

    prompt = "<|im_start|>user\nSolve it.<|im_end|>\n<|im_start|>assistant\n"
    apps = _json.dumps({"inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"]})
    taco = {"input_output": {"fn_name": "add", "inputs": [[1, 2], [2, 2]], "outputs": [[3], [5]]}}
    body = {"query": [prompt + f"```python\n{PY_SUM}\n```<|im_end|>",
                      prompt + "```python\ndef add(a, b):\n    return a + b\n```<|im_end|>"],
            "prompts": [prompt, prompt], "labels": [apps, taco], "mode": "tests"}
    r = await client.post("/get_reward", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["extra_logs"]["pass_rate"] == [1.0, 0.5]


async def test_program_budget_applies_to_every_kind(client: httpx.AsyncClient) -> None:
    slow = "import time\ndef f(x):\n    time.sleep(0.3)\n    return x"
    subs = [{"code": slow, "tests": [f"assert f({i}) == {i}" for i in range(8)]},
            {"code": slow, "tests": {"kind": "call", "fn_name": "f", "inputs": [[i] for i in range(8)],
                                     "outputs": list(range(8))}}]
    r = await client.post("/execute-tests", json={"submissions": subs, "program_timeout_s": 1.0})
    assert r.status_code == 200, r.text
    for result in r.json()["results"]:
        statuses = [t["status"] for t in result["tests"]]
        assert statuses[0] == "passed" and statuses[-1] == "not_run", statuses
        assert 2 <= statuses.count("passed") <= 5, statuses
        assert "time budget" in result["tests"][-1]["error"]


async def test_get_reward_runs_a_cpp_answer_against_a_code_contests_label(
        client: httpx.AsyncClient) -> None:
    if languages.version("cpp") is None:
        pytest.skip("no g++ here (make toolchains)")
    prompt = "<|im_start|>user\nSum two numbers in C++.<|im_end|>\n<|im_start|>assistant\n"
    answer = f"Here it is:\n```cpp\n{CPP_SUM}\n```\nand in Python:\n```python\nprint(0)\n```"
    label = {"language": "cpp", "public_tests": {"input": ["1 2\n", "2 2\n"],
                                                 "output": ["3\n", "4\n"]}}
    body = {"query": [prompt + answer + "<|im_end|>"], "prompts": [prompt], "labels": [label],
            "mode": "tests"}
    r = await client.post("/get_reward", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["extra_logs"]["pass_rate"] == [1.0]

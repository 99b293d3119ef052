"""POST /execute-tests through the real app and the real LocalSandbox (no fakes of execution)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox_worker.bench import humaneval_programs
from sandbox_worker.executor import Executor
from service.config import Settings
from service.execution.sandbox import LocalSandbox
from service.http.app import create_app
from service.metrics import Metrics
from tests.http.fakes import FakeRegistry
from tests.servers import run_uvicorn

LIMITS = dict(max_submissions=200, max_tests=20, max_text_chars=2000, max_timeout_s=5.0,
              max_memory_mb=2048)


def _client(executor: Executor, **limits: object) -> httpx.AsyncClient:
    settings = Settings(_env_file=None, **limits)  # type: ignore[arg-type]
    metrics = Metrics()
    sandbox = LocalSandbox(executor, workers=2, max_pending=1000, metrics=metrics)
    app = create_app(settings, sandbox=sandbox, registry=FakeRegistry(), metrics=metrics)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                             timeout=120)


@pytest.fixture
async def client(executor: Executor) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(executor, **LIMITS) as c:
        yield c


def _body(programs: list[tuple[str, list[str]]], **extra: object) -> dict[str, object]:
    subs = [{"id": str(i), "code": c, "tests": t} for i, (c, t) in enumerate(programs)]
    return {"submissions": subs, **extra}


async def test_humaneval_canonical_all_pass_and_broken_get_zero(executor: Executor) -> None:
    async with _client(executor) as client:
        await _humaneval(client)


async def _humaneval(client: httpx.AsyncClient) -> None:
    progs = humaneval_programs()
    assert len(progs) == 164
    good = [(code, tests) for _, code, tests, _ in progs]
    r = await client.post("/execute-tests", json=_body(good, timeout_s=5.0, memory_mb=1024))
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    failing = [(progs[i][0], res["tests"]) for i, res in enumerate(results)
               if res["pass_rate"] != 1.0]
    assert failing == []
    assert all(res["status"] == "ok" for res in results)
    broken = []
    for _, _, tests, problem in progs:
        broken.append((problem["prompt"] + "    raise NotImplementedError\n", tests))
        broken.append((problem["prompt"] + "    return None\n", tests))
    r = await client.post("/execute-tests", json=_body(broken, timeout_s=5.0))
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["passed"] for x in res[0::2]] == [0] * 164  # raising body: nothing passes
    assert [x["pass_rate"] < 1.0 for x in res[1::2]] == [True] * 164  # `return None`


async def test_response_shape_and_order(client: httpx.AsyncClient) -> None:
    body = _body([("def f(x):\n    return x", ["assert f(1) == 1", "assert f(1) == 2"]),
                  ("def f(:", ["assert f(1) == 1"]),
                  ("raise ValueError('at load')", ["assert True"])])
    r = await client.post("/execute-tests", json=body)
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["id"] for x in res] == ["0", "1", "2"]
    assert res[0]["status"] == "ok" and res[0]["pass_rate"] == 0.5
    assert [t["status"] for t in res[0]["tests"]] == ["passed", "failed"]
    assert res[1]["status"] == "syntax_error" and res[1]["pass_rate"] == 0.0
    assert res[2]["status"] == "load_error" and res[2]["passed"] == 0


async def test_limits_give_413(client: httpx.AsyncClient) -> None:
    too_many = _body([("x = 1", ["assert x == 1"])] * 201)
    assert (await client.post("/execute-tests", json=too_many)).status_code == 413
    many_tests = _body([("x = 1", ["assert x == 1"] * 21)])
    assert (await client.post("/execute-tests", json=many_tests)).status_code == 413
    long_code = _body([("x = 1\n" + "#" * 2001, ["assert x == 1"])])
    assert (await client.post("/execute-tests", json=long_code)).status_code == 413


@pytest.mark.parametrize("body", [
    {}, {"submissions": "nope"}, {"submissions": [{"tests": ["assert True"]}]},
    {"submissions": [{"code": "x = 1", "tests": "assert True"}]},
    {"submissions": [{"code": "x = 1", "tests": []}], "timeout_s": 6.0},
    {"submissions": [{"code": "x = 1", "tests": []}], "timeout_s": -1},
    {"submissions": [{"code": "x = 1", "tests": []}], "memory_mb": 4096},
])
async def test_malformed_or_over_max_gives_422(client: httpx.AsyncClient,
                                               body: dict[str, object]) -> None:
    assert (await client.post("/execute-tests", json=body)).status_code == 422


async def test_request_limits_are_honoured(client: httpx.AsyncClient) -> None:
    code = "import time\ndef f(x):\n    time.sleep(x)\n    return x"
    r = await client.post("/execute-tests", json=_body(
        [(code, ["assert f(0) == 0", "assert f(2) == 2"])], timeout_s=0.5))
    assert [t["status"] for t in r.json()["results"][0]["tests"]] == ["passed", "timeout"]
    code = "def f(n):\n    return len(bytearray(n * 2**20))"
    r = await client.post("/execute-tests", json=_body(
        [(code, ["assert f(10) == 10 * 2**20", "assert f(400) == 400 * 2**20"])],
        memory_mb=256))
    assert [t["status"] for t in r.json()["results"][0]["tests"]] == ["passed", "error"]


def test_real_composition_root_serves_and_reports_isolation() -> None:
    settings = Settings(_env_file=None, sandbox_workers=2)  # type: ignore[call-arg]
    app = create_app(settings, registry=FakeRegistry())
    with run_uvicorn(app) as url:
        r = httpx.post(url + "/execute-tests", json=_body(
            [("def f():\n    return 1", ["assert f() == 1"])]), timeout=60)
        assert r.status_code == 200 and r.json()["results"][0]["passed"] == 1
        ready = httpx.get(url + "/readyz", timeout=10).json()
        assert ready["sandbox"]["isolation"] in ("namespaces", "none")

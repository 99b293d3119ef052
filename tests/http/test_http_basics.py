"""The HTTP skeleton: auth, limits, errors, request ids, metrics, readiness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from service.config import Settings
from service.http.app import create_app
from tests.http.fakes import FakeRegistry, FakeSandbox

BODY = {"submissions": [{"id": "a", "code": "x = 1", "tests": ["assert True", "assert x == 2"]}]}


def make_client(settings: Settings, sandbox: FakeSandbox | None = None,
                registry: FakeRegistry | None = None) -> httpx.AsyncClient:
    app = create_app(settings, sandbox=sandbox or FakeSandbox(),
                     registry=registry or FakeRegistry())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(Settings(_env_file=None)) as c:
        yield c


async def test_healthz_and_request_id(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert len(r.headers["x-request-id"]) == 32
    r = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


async def test_execute_maps_results_in_order(client: httpx.AsyncClient) -> None:
    r = await client.post("/execute-tests", json=BODY)
    assert r.status_code == 200
    res = r.json()["results"][0]
    assert res["id"] == "a" and res["passed"] == 1 and res["total"] == 2
    assert res["pass_rate"] == 0.5
    assert [t["status"] for t in res["tests"]] == ["passed", "failed"]


async def test_readyz_follows_registry_and_sandbox() -> None:
    sandbox = FakeSandbox()
    async with make_client(Settings(_env_file=None), sandbox, FakeRegistry(ready=False)) as c:
        r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["models"] is False
    async with make_client(Settings(_env_file=None), sandbox, FakeRegistry()) as c:
        assert (await c.get("/readyz")).status_code == 200
        sandbox.is_ready = False
        r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["sandbox"]["ready"] is False


async def test_api_keys_guard_api_but_not_ops() -> None:
    settings = Settings(_env_file=None, api_keys="k1, k2")
    async with make_client(settings) as c:
        assert (await c.post("/execute-tests", json=BODY)).status_code == 401
        bad = await c.post("/execute-tests", json=BODY, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
        ok = await c.post("/execute-tests", json=BODY, headers={"Authorization": "Bearer k2"})
        assert ok.status_code == 200
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await c.get(path)).status_code == 200


async def test_body_limit_declared_and_streamed() -> None:
    settings = Settings(_env_file=None, max_body_bytes=2048)
    big = {"submissions": [{"code": "x" * 4000, "tests": []}]}
    async with make_client(settings) as c:
        r = await c.post("/execute-tests", json=big)
        assert r.status_code == 413 and "body over" in r.json()["detail"]

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"submissions": [{"code": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'", "tests": []}]}'

        r = await c.post("/execute-tests", content=chunks(),
                         headers={"content-type": "application/json"})
        assert r.status_code == 413


@pytest.mark.parametrize("body", [
    {}, {"submissions": []}, {"submissions": [{"code": 1, "tests": []}]},
    {"submissions": [{"code": "x", "tests": "assert 1"}]},
    {"submissions": [{"code": "x", "tests": []}], "timeout_s": -1},
    {"submissions": [{"code": "x", "tests": []}], "surprise": 1},
])
async def test_malformed_bodies_are_422(client: httpx.AsyncClient, body: object) -> None:
    r = await client.post("/execute-tests", json=body)
    assert r.status_code == 422 and isinstance(r.json()["detail"], list)


async def test_not_json_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/execute-tests", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert r.status_code == 422


async def test_limits_are_413_and_422() -> None:
    settings = Settings(_env_file=None, max_submissions=2, max_tests=3, max_text_chars=100,
                        max_timeout_s=5)
    async with make_client(settings) as c:
        many = {"submissions": [{"code": "x", "tests": []}] * 3}
        assert (await c.post("/execute-tests", json=many)).status_code == 413
        tests = {"submissions": [{"code": "x", "tests": ["assert 1"] * 4}]}
        assert (await c.post("/execute-tests", json=tests)).status_code == 413
        long = {"submissions": [{"code": "x" * 101, "tests": []}]}
        assert (await c.post("/execute-tests", json=long)).status_code == 413
        slow = {"submissions": [{"code": "x", "tests": []}], "timeout_s": 6}
        r = await c.post("/execute-tests", json=slow)
        assert r.status_code == 422 and "maximum" in r.json()["detail"]


async def test_unexpected_fault_is_short_500_with_request_id() -> None:
    sandbox = FakeSandbox(fail_with=RuntimeError("secret internals /etc/passwd"))
    async with make_client(Settings(_env_file=None), sandbox) as c:
        r = await c.post("/execute-tests", json=BODY)
        assert r.status_code == 500
        assert r.json() == {"detail": "internal error", "request_id": r.headers["x-request-id"]}
        assert "secret" not in r.text and "Traceback" not in r.text


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.post("/execute-tests", json=BODY)
    await client.post("/execute-tests", json={})
    text = (await client.get("/metrics")).text
    assert 'codereward_http_requests_total{method="POST",route="/execute-tests",status="200"} 1.0' in text
    assert 'route="/execute-tests",status="422"} 1.0' in text
    assert 'codereward_sandbox_programs_total' in text


def test_model_specs_parse_and_reject() -> None:
    s = Settings(_env_file=None, models="a=/m/a, b=~/m/b")
    specs = s.model_specs()
    assert [n for n, _ in specs] == ["a", "b"] and str(specs[0][1]) == "/m/a"
    with pytest.raises(ValueError, match="name=path"):
        Settings(_env_file=None, models="oops").model_specs()
    assert Settings(_env_file=None).model_specs() == []


def test_masked_settings_hide_secrets() -> None:
    s = Settings(_env_file=None, api_keys="topsecret", redis_url="redis://u:pw@h:6379/0")
    masked = s.masked()
    assert "topsecret" not in str(masked) and "pw" not in str(masked["redis_url"])
    assert masked["api_keys"] == "<1 keys>"


@pytest.fixture
def env_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CODEREWARD_PORT", "9123")
    monkeypatch.setenv("CODEREWARD_SANDBOX_WORKERS", "3")
    yield


def test_settings_come_from_env(env_settings: None) -> None:
    s = Settings(_env_file=None)
    assert s.port == 9123 and s.sandbox_workers == 3


async def test_lone_surrogates_are_422(client: httpx.AsyncClient) -> None:
    raw = b'{"submissions": [{"code": "x = \\"\\ud800\\"", "tests": ["assert True"]}]}'
    r = await client.post("/execute-tests", content=raw,
                          headers={"content-type": "application/json"})
    assert r.status_code == 422 and "surrogate" in r.json()["detail"]


class SlowWarmRegistry:
    """Loads at once, but its first scores take a while (the warm-up)."""

    def __init__(self) -> None:
        self.loaded = False
        self.release = asyncio.Event()

    def ready(self) -> bool:
        return self.loaded

    async def start(self) -> None:
        self.loaded = True

    def names(self) -> list[str]:
        return ["m"]

    def get(self, name: str | None) -> SlowWarmRegistry:
        return self

    async def score(self, items: object) -> None:
        await self.release.wait()

    async def aclose(self) -> None:
        return None


async def test_readyz_waits_for_warm_up() -> None:
    registry = SlowWarmRegistry()
    app = create_app(Settings(_env_file=None), sandbox=FakeSandbox(), registry=registry)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            await asyncio.sleep(0.05)
            assert registry.loaded
            assert (await c.get("/readyz")).status_code == 503  # loaded, still warming up
            registry.release.set()
            for _ in range(100):
                if (await c.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            assert (await c.get("/readyz")).status_code == 200

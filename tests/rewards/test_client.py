"""Client retries against a real HTTP server that answers 429/503 before succeeding."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from codereward_client import AsyncCodeRewardClient, CodeRewardClient, CodeRewardError
from codereward_client.client import _retry_after
from tests.servers import free_port, run_uvicorn


def _flaky_app() -> FastAPI:
    """Fails the first `fail` posts of each key with the given status, then echoes."""
    app = FastAPI()
    app.state.calls = {}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/get_reward")
    async def get_reward(request: Request) -> JSONResponse:
        body = await request.json()
        key = body["query"][0]
        status, fail = body["labels"][0]["status"], body["labels"][0]["fail"]
        await asyncio.sleep(body["labels"][0].get("sleep", 0.0))
        calls = app.state.calls
        calls[key] = calls.get(key, 0) + 1
        if calls[key] <= fail:
            return JSONResponse({"detail": "busy"}, status_code=status,
                                headers={"Retry-After": "0"})
        auth = request.headers.get("authorization")
        return JSONResponse({"rewards": [float(calls[key])], "auth": auth})

    return app


@pytest.fixture(scope="module")
def flaky() -> Iterator[tuple[str, FastAPI]]:
    app = _flaky_app()
    with run_uvicorn(app) as url:
        yield url, app


@pytest.mark.parametrize("status", [429, 502, 503])
def test_sync_client_retries_overload_then_succeeds(flaky: tuple[str, FastAPI],
                                                    status: int) -> None:
    url, _ = flaky
    with CodeRewardClient(url, backoff_s=0.01, retries=3, api_key="k1") as client:
        body = client.get_reward([f"sync{status}"], labels=[{"status": status, "fail": 2}])
    assert body["rewards"] == [3.0]  # two refusals, then the third try
    assert body["auth"] == "Bearer k1"


def test_client_gives_up_after_retries(flaky: tuple[str, FastAPI]) -> None:
    url, app = flaky
    with CodeRewardClient(url, backoff_s=0.01, retries=2) as client, \
            pytest.raises(CodeRewardError) as err:
        client.get_reward(["giveup"], labels=[{"status": 503, "fail": 10}])
    assert err.value.status_code == 503
    assert app.state.calls["giveup"] == 3


def test_client_does_not_retry_client_errors(flaky: tuple[str, FastAPI]) -> None:
    url, app = flaky
    with CodeRewardClient(url, backoff_s=0.01) as client, pytest.raises(CodeRewardError) as err:
        client.get_reward(["bad"], labels=[{"status": 422, "fail": 10}])
    assert err.value.status_code == 422
    assert app.state.calls["bad"] == 1


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
def test_async_client_retries(flaky: tuple[str, FastAPI], http: str) -> None:
    url, _ = flaky

    async def run() -> list[Any]:
        async with AsyncCodeRewardClient(url, backoff_s=0.01, http=http, api_key="k2") as client:
            bodies = await asyncio.gather(*[
                client.get_reward([f"async-{http}{i}"], labels=[{"status": 429, "fail": 1}])
                for i in range(5)])
            with pytest.raises(CodeRewardError) as err:
                await client.get_reward([f"bad-{http}"], labels=[{"status": 422, "fail": 9}])
            assert err.value.status_code == 422
        return bodies

    bodies = asyncio.run(run())
    assert [b["rewards"][0] for b in bodies] == [2.0] * 5
    assert {b["auth"] for b in bodies} == {"Bearer k2"}


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
def test_async_connection_refused_is_retried_then_raised(http: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    async def run() -> None:
        async with AsyncCodeRewardClient(url, backoff_s=0.01, retries=1, http=http) as client:
            await client.get_reward(["x"])

    with pytest.raises(CodeRewardError):
        asyncio.run(run())


def test_connection_refused_is_retried_then_raised() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with CodeRewardClient(url, backoff_s=0.01, retries=1) as client, \
            pytest.raises(CodeRewardError, match="ConnectError"):
        client.get_reward(["x"])


def test_retry_after_is_honoured_in_the_backoff() -> None:
    client = CodeRewardClient("http://127.0.0.1:1", backoff_s=0.01, max_backoff_s=30)
    asked = httpx.Response(429, headers={"Retry-After": "7"})
    assert client._delay(0, asked.headers) == 7.0
    assert client._delay(0, None) <= 0.01
    capped = CodeRewardClient("http://127.0.0.1:1", max_backoff_s=2)
    assert capped._delay(0, asked.headers) == 2.0
    client.close()
    capped.close()


def test_retry_after_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    seconds = _retry_after({"retry-after": when})
    assert seconds is not None and 50 < seconds <= 60
    assert _retry_after({"retry-after": "soon"}) is None


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
def test_timeout_counts_from_a_free_connection_not_the_queue(flaky: tuple[str, FastAPI],
                                                             http: str) -> None:
    url, _ = flaky

    async def run() -> list[Any]:
        # 12 requests of 0.3 s over 2 connections: the last waits ~1.5 s, over the 1 s timeout
        async with AsyncCodeRewardClient(url, http=http, max_connections=2, timeout_s=1.0,
                                         retries=0) as client:
            return await asyncio.gather(*[
                client.get_reward([f"queue-{http}{i}"],
                                  labels=[{"status": 200, "fail": 0, "sleep": 0.3}])
                for i in range(12)])

    assert len(asyncio.run(run())) == 12

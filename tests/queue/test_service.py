"""The HTTP service over the Redis backend: backpressure, deadlines, Redis restarts, readiness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from sandbox_worker.protocol import Job
from service.errors import DeadlineExceeded, Overloaded
from service.execution.redis_sandbox import RedisSandbox
from service.http.app import create_app
from service.metrics import Metrics
from tests.queue.conftest import ReadyRegistry, WorkerProc, queue_settings
from tests.servers import RedisServer, run_uvicorn


def _body(n: int, tag: str = "", sleep_s: float = 0.0) -> dict[str, object]:
    subs = [{"id": f"{tag}{i}",
             "code": f"import time\ntime.sleep({sleep_s})\nv = {i}  # {tag}",
             "tests": [f"assert v == {i}", "assert v == -1"]} for i in range(n)]
    return {"submissions": subs, "timeout_s": 1.0}


def test_full_stream_or_too_many_in_flight_answers_429(redis_server: RedisServer) -> None:
    settings = queue_settings(redis_server.url, queue_max_length=3)
    with run_uvicorn(create_app(settings, registry=ReadyRegistry())) as url:  # no worker runs
        r = httpx.post(url + "/execute-tests", json=_body(4), timeout=30)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    settings = queue_settings(redis_server.url, max_sandbox_queue=2)
    with run_uvicorn(create_app(settings, registry=ReadyRegistry())) as url:
        r = httpx.post(url + "/execute-tests", json=_body(3, "b"), timeout=30)
        assert r.status_code == 429 and "Retry-After" in r.headers


async def test_full_queue_still_answers_cache_hits_and_joins(
        redis_server: RedisServer, start_worker: Callable[..., WorkerProc]) -> None:
    sandbox = RedisSandbox(redis_server.url, metrics=Metrics(), max_stream_length=1)
    cached, queued, refused = (Job(code=f"x = {i}", tests=[f"assert x == {i}"], timeout_s=1,
                                   memory_mb=256) for i in range(3))
    try:
        worker = start_worker()
        first = await sandbox.execute([cached], deadline_s=30)
        assert worker.terminate() == 0
        with pytest.raises(DeadlineExceeded):  # queued; nobody runs it: the stream is full
            await sandbox.execute([queued], deadline_s=0.3)
        with pytest.raises(Overloaded):
            await sandbox.execute([refused], deadline_s=5)
        with pytest.raises(DeadlineExceeded):  # the same job again joins, it is not refused
            await sandbox.execute([queued], deadline_s=0.3)
        assert await sandbox.execute([cached], deadline_s=5) == first
        assert sandbox.submits.labels("refused")._value.get() == 1
    finally:
        await sandbox.aclose()


async def test_no_worker_means_deadline_exceeded(redis_server: RedisServer) -> None:
    sandbox = RedisSandbox(redis_server.url, metrics=Metrics())
    try:
        with pytest.raises(DeadlineExceeded):
            await sandbox.execute([Job(code="x = 1", tests=["assert x"], timeout_s=1,
                                       memory_mb=256)], deadline_s=0.5)
    finally:
        await sandbox.aclose()


async def test_redis_restart_mid_run(redis_server: RedisServer,
                                     start_worker: Callable[..., WorkerProc]) -> None:
    start_worker()
    settings = queue_settings(redis_server.url, request_timeout_s=8.0)
    deadline_s = 8.0  # deadline_for(): max(request_timeout_s, 1 s x 2 tests + 5)
    with run_uvicorn(create_app(settings, registry=ReadyRegistry()), ready_path="/readyz") as url:
        async with httpx.AsyncClient(base_url=url, timeout=deadline_s + 10) as client:
            sandbox = (await client.get("/readyz")).json()["sandbox"]
            assert sandbox["backend"] == "redis" and sandbox["workers"] == "1"
            assert sandbox["isolation"] in ("bwrap", "namespaces", "none")
            async def one(k: int) -> tuple[int, float, httpx.Response]:
                start = time.monotonic()
                r = await client.post("/execute-tests", json=_body(4, f"r{k}-", 0.3))
                return k, time.monotonic() - start, r

            tasks = [asyncio.create_task(one(k)) for k in range(8)]
            await asyncio.sleep(0.5)
            redis_server.stop()
            assert (await client.get("/readyz")).status_code == 503
            down = await client.post("/execute-tests", json=_body(1, "down"))
            assert down.status_code == 503
            await asyncio.sleep(1.0)
            redis_server.start()
            answered = await asyncio.gather(*tasks)
            for _k, elapsed, r in answered:
                assert r.status_code in (200, 503, 504), r.text
                assert elapsed < deadline_s + 5  # nobody hangs past the deadline
                if r.status_code == 200:
                    for i, res in enumerate(r.json()["results"]):
                        assert res["passed"] == 1 and res["tests"][0]["status"] == "passed", i
            for _ in range(300):  # readiness comes back by itself (no restart)
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await client.get("/readyz")).status_code == 200
            after = await client.post("/execute-tests", json=_body(3, "after"))
            assert after.status_code == 200
            assert [res["passed"] for res in after.json()["results"]] == [1, 1, 1]


def test_worker_prints_masked_settings(start_worker: Callable[..., WorkerProc],
                                       redis_server: RedisServer) -> None:
    worker = start_worker(wait=False, CODEREWARD_REDIS_URL=(
        f"redis://user:hunter2@127.0.0.1:{redis_server.port}/0"))
    log: Path = worker.log
    for _ in range(200):
        if "settings" in log.read_text():
            break
        time.sleep(0.05)
    text = log.read_text()
    assert '"msg": "settings' in text and "***@127.0.0.1" in text
    assert "hunter2" not in text


def test_text_without_utf8_form_is_422_not_500(redis_server: RedisServer) -> None:
    settings = queue_settings(redis_server.url)
    with run_uvicorn(create_app(settings, registry=ReadyRegistry())) as url:
        body = '{"submissions": [{"code": "x = \\"\\ud800\\"", "tests": ["assert x"]}]}'
        r = httpx.post(url + "/execute-tests", content=body,
                       headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code == 422 and "Unicode" in r.text, r.text


async def test_stdio_call_and_cpp_jobs_run_on_a_worker(
        redis_server: RedisServer, start_worker: Callable[..., WorkerProc]) -> None:
    from sandbox_worker import languages
    from sandbox_worker.protocol import CallTests, StdioTests

    stdio = StdioTests(kind="stdio", cases=[{"input": "1 2", "output": "3"},  # type: ignore[list-item]
                                            {"input": "2 2", "output": "5"}])
    jobs = [Job(code="print(sum(map(int, input().split())))", tests=stdio, timeout_s=5,
                memory_mb=512),
            Job(code="def f(x):\n    return x * 2", timeout_s=5, memory_mb=512,
                tests=CallTests(kind="call", fn_name="f", inputs=[[1], [2]], outputs=[2, 5]))]
    if languages.version("cpp") is not None:
        jobs.append(Job(code="#include <cstdio>\nint main(){int a,b;scanf(\"%d %d\",&a,&b);"
                             "printf(\"%d\",a+b);}", language="cpp", tests=stdio, timeout_s=5,
                        memory_mb=512))
    start_worker()
    sandbox = RedisSandbox(redis_server.url, metrics=Metrics())
    try:
        results = await sandbox.execute(jobs, deadline_s=60)
        assert [[t.status.value for t in r.tests] for r in results] == \
            [["passed", "failed"]] * len(jobs)
        assert await sandbox.ready()
        assert "python" in (sandbox.languages() or {})  # announced in the worker's heartbeat
    finally:
        await sandbox.aclose()

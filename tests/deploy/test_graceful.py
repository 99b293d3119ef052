"""SIGTERM under load: /readyz turns 503, accepted requests all finish, then the process exits."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy.service_proc import ServiceProcess

GRACE_S = 30.0
# each accepted request holds the server ~1.5 s: it is surely in flight when SIGTERM lands
SLOW = {"submissions": [{"code": "import time\n",
                         "tests": ["assert time.sleep(1.5) is None"]}], "timeout_s": 10}


def in_flight(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    line = next(x for x in text.splitlines() if x.startswith("codereward_http_in_flight_requests"))
    return float(line.split()[-1])


@pytest.fixture
def service(tiny_model: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    proc = ServiceProcess(tiny_model, tmp_path / "service.log",
                          shutdown_grace_s=str(GRACE_S), sandbox_workers="4")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def test_sigterm_drains_without_dropping_accepted_requests(service: ServiceProcess) -> None:
    url = service.url
    slow: list[httpx.Response | Exception] = []
    score: list[tuple[float, int | str]] = []  # (time sent, status or error name)
    stop = threading.Event()

    def send_slow() -> None:
        try:
            slow.append(httpx.post(url + "/execute-tests", json=SLOW, timeout=60))
        except httpx.HTTPError as exc:
            slow.append(exc)

    def score_loop() -> None:
        # /get_reward: the RL path, through the model's batcher
        body = {"query": ["user: add two numbers\nassistant: def add(a, b): return a+b"] * 8}
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    score.append((sent, client.post(url + "/get_reward", json=body).status_code))
                except httpx.HTTPError as exc:
                    score.append((sent, type(exc).__name__))
                time.sleep(0.02)

    slow_threads = [threading.Thread(target=send_slow) for _ in range(4)]
    loaders = [threading.Thread(target=score_loop) for _ in range(2)]
    for t in slow_threads + loaders:
        t.start()
    deadline = time.monotonic() + 30
    while in_flight(url) < 5 and time.monotonic() < deadline:  # 4 slow + this scrape
        time.sleep(0.05)
    assert in_flight(url) >= 5, "the slow requests never got in flight"

    sigterm_at = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # the drain flag is set by the signal handler; let the loop see it
    ready = httpx.get(url + "/readyz", timeout=5)
    assert ready.status_code == 503 and ready.json()["draining"] is True
    late = httpx.post(url + "/execute-tests", json=SLOW, timeout=10)
    assert late.status_code == 503 and late.headers["retry-after"] == "1"

    for t in slow_threads:
        t.join(timeout=60)
    stop.set()
    for t in loaders:
        t.join(timeout=60)
    service.proc.wait(timeout=GRACE_S + 15)
    assert service.proc.returncode == 0, service.logs()[-2000:]

    # every request accepted before SIGTERM was answered in full
    assert len(slow) == 4
    for response in slow:
        assert isinstance(response, httpx.Response), response
        assert response.status_code == 200
        assert response.json()["results"][0]["pass_rate"] == 1.0
    before = [s for t, s in score if t < sigterm_at]
    after = [s for t, s in score if t >= sigterm_at]
    assert before and all(s == 200 for s in before), before
    # after SIGTERM: served, told to go elsewhere (503), or no longer connected; never a 5xx
    assert set(after) <= {200, 503, "ConnectError", "RemoteProtocolError"}, after
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/healthz", timeout=2)

    logs = [json.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
    access = [r for r in logs if r.get("logger") == "codereward.access"]
    assert access and all(r["request_id"] for r in access), "access lines carry request ids"
    assert any(r["msg"] == "draining" for r in logs)

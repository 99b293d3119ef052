"""SIGTERM under load: /readyz turns 503, accepted requests all finish, then the process exits.

"Accepted" is judged by the server itself: every request the app saw has an access-log line
with the id the client sent (x-request-id). A request the client lost (connection reset or
closed) must have no such line: it never reached the app, so a retry is safe.
"""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.service_proc import ServiceProcess

GRACE_S = 30.0
# each accepted request holds the server 4 s: far longer than the checks made while draining
SLOW = {"submissions": [{"code": "import time\n",
                         "tests": ["assert time.sleep(4) is None"]}], "timeout_s": 10}
REWARD = {"query": ["user: add two numbers\nassistant: def add(a, b): return a+b"] * 8}


def programs_running(url: str) -> float:
    """Programs accepted by the sandbox and not finished (only the slow requests run any)."""
    text = httpx.get(url + "/metrics", timeout=5).text
    prefix = "codereward_sandbox_in_flight_programs "
    return float(next(x for x in text.splitlines() if x.startswith(prefix)).split()[-1])


@pytest.fixture
def service(tiny_model: Path, tmp_path: Path) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(tiny_model, tmp_path / "service.log",
                          shutdown_grace_s=str(GRACE_S), sandbox_workers="4")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def test_sigterm_drains_without_dropping_accepted_requests(service: ServiceProcess) -> None:
    url = service.url
    ids = (f"client-{n}" for n in itertools.count())
    outcomes: dict[str, tuple[str, float, int | str]] = {}  # id -> (path, sent at, outcome)
    stop = threading.Event()

    def send(client: httpx.Client, path: str, body: dict[str, object]) -> None:
        rid, sent = next(ids), time.monotonic()
        try:
            response = client.post(path, json=body, headers={"x-request-id": rid})
            outcomes[rid] = (path, sent, response.status_code)
            if path == "/execute-tests" and response.status_code == 200:
                assert response.json()["results"][0]["pass_rate"] == 1.0
        except httpx.HTTPError as exc:
            outcomes[rid] = (path, sent, type(exc).__name__)

    def send_slow() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            send(client, "/execute-tests", SLOW)

    def reward_loop() -> None:  # the RL path, through the model's batcher
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                send(client, "/get_reward", REWARD)
                time.sleep(0.02)

    slow_threads = [threading.Thread(target=send_slow) for _ in range(4)]
    loaders = [threading.Thread(target=reward_loop) for _ in range(2)]
    for t in slow_threads + loaders:
        t.start()
    deadline = time.monotonic() + 30
    while programs_running(url) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert programs_running(url) == 4, "the slow requests never got in flight"

    sigterm_at = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # the drain flag is set by the signal handler; let the loop see it
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
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/healthz", timeout=2)

    # the slow requests were in the sandbox at SIGTERM: all answered in full
    slow = [o for p, _, o in outcomes.values() if p == "/execute-tests"]
    assert slow == [200] * 4
    before = [o for _, sent, o in outcomes.values() if sent < sigterm_at]
    assert before.count(200) >= 4 and set(before) <= {200, 503}, before

    logs = [json.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
    access = {r["request_id"]: r["status"] for r in logs if r.get("logger") == "codereward.access"}
    for rid, (path, _, outcome) in outcomes.items():
        if isinstance(outcome, int):
            assert outcome in (200, 503), (rid, path, outcome)
            assert access.get(rid) == outcome, (rid, "client and server disagree")
        else:  # lost on the wire: only allowed when the app never saw the request
            assert outcome in ("ConnectError", "RemoteProtocolError", "ReadError"), outcome
            assert rid not in access, (rid, path, outcome, "accepted, then dropped")
    assert any(r["msg"] == "draining" for r in logs)
    assert any(r["msg"] == "model warmed up" and r["model"] == "tiny" for r in logs)

"""Queue-area fixtures: real `python -m sandbox_worker` processes against a real redis-server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from service.config import Settings
from tests.servers import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]

# Short timings so recovery paths run within seconds (the defaults are production-sized).
FAST_ENV = {
    "CODEREWARD_CLAIM_IDLE_S": "1.5",
    "CODEREWARD_WORKER_HEARTBEAT_S": "0.3",
    "CODEREWARD_READ_BLOCK_S": "0.3",
    "CODEREWARD_SANDBOX_WORKERS": "2",
    "CODEREWARD_LOG_JSON": "true",
}


class WorkerProc:
    """One real worker process, its log file and metrics port."""

    def __init__(self, proc: subprocess.Popen[bytes], name: str, port: int, log: Path) -> None:
        self.proc, self.name, self.port, self.log = proc, name, port, log

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout_s: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples called `name` whose labels include `labels`."""
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    total += sample.value
        return total

    def cleanup(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the worker and any child it left
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


@pytest.fixture
def rdb(redis_server: RedisServer) -> Iterator[redis.Redis[str]]:
    """A plain sync client on the test's Redis, for inspecting the queue."""
    client: redis.Redis[str] = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def start_worker(redis_server: RedisServer, tmp_path: Path,
                 rdb: redis.Redis[str]) -> Iterator[Callable[..., WorkerProc]]:
    """Start `python -m sandbox_worker` processes; all are killed at teardown."""
    procs: list[WorkerProc] = []

    def _start(wait: bool = True, **env: str) -> WorkerProc:
        name = f"w{len(procs)}"
        port = free_port()
        full = {**os.environ, **FAST_ENV, "CODEREWARD_REDIS_URL": redis_server.url,
                "CODEREWARD_WORKER_NAME": name, "CODEREWARD_WORKER_METRICS_PORT": str(port),
                **env}
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "sandbox_worker"], env=full, cwd=ROOT,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        worker = WorkerProc(proc, name, port, log)
        procs.append(worker)
        deadline = time.monotonic() + 60
        while wait and not rdb.exists(f"codereward:worker:{name}"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start:\n{log.read_text()}")
            time.sleep(0.05)
        return worker

    yield _start
    for worker in procs:
        worker.cleanup()


class ReadyRegistry:
    """Stand-in model registry that is always ready: these tests exercise the sandbox only."""

    def ready(self) -> bool:
        return True

    def infos(self) -> list[Any]:
        return []


def queue_settings(redis_url: str, **overrides: Any) -> Settings:
    """Service settings pointing at the test's Redis."""
    return Settings(redis_url=redis_url, log_json=False, **overrides)

"""Graceful operations: drain on SIGTERM (readyz 503, finish in-flight requests), then exit."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("codereward.lifecycle")

# Operations routes stay answerable while draining (probes, scrapes) and are not counted.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class InFlight:
    """Count of API requests being served (read by the server's drain loop)."""

    def __init__(self) -> None:
        self.count = 0


class DrainMiddleware:
    """Counts in-flight API requests; once draining, answers new ones 503 + Connection: close."""

    def __init__(self, app: ASGIApp, *, inflight: InFlight) -> None:
        self.app = app
        self.inflight = inflight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPS_PATHS:
            await self.app(scope, receive, send)
            return
        if getattr(scope["app"].state, "draining", False):
            body = b'{"detail":"server is shutting down; retry on another replica"}'
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        self.inflight.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight.count -= 1


class DrainingServer(uvicorn.Server):
    """uvicorn that drains on the first SIGTERM/SIGINT instead of closing at once.

    Draining: /readyz answers 503 and new API requests 503, while accepted requests (and the
    batches they wait on) finish; the server exits when none are left or after `grace_s`
    seconds. A second signal falls back to uvicorn's immediate shutdown.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI, *, grace_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._grace_s = grace_s
        self._drain_started: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_started is None and sig in (signal.SIGTERM, signal.SIGINT):
            # signal handler context: only set flags; the event loop does the rest in on_tick
            self._drain_started = time.monotonic()
            self._app.state.draining = True
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        if self._drain_started is None:
            return False
        inflight: InFlight = self._app.state.inflight
        elapsed = time.monotonic() - self._drain_started
        if counter % 10 == 0:
            log.info("draining", extra={"in_flight": inflight.count,
                                        "elapsed_s": round(elapsed, 1)})
        if inflight.count == 0 or elapsed >= self._grace_s:
            if inflight.count:
                log.warning("grace period over; cancelling requests",
                            extra={"in_flight": inflight.count, "grace_s": self._grace_s})
            # what is left of the grace bounds uvicorn's own wait for open connections
            self.config.timeout_graceful_shutdown = max(1, int(self._grace_s - elapsed))
            self.should_exit = True
            return True
        return False


def serve(app: FastAPI, *, host: str, port: int, grace_s: float) -> None:
    """Run `app` until SIGTERM/SIGINT, then drain for at most `grace_s` seconds."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=max(1, int(grace_s)))
    DrainingServer(config, app, grace_s=grace_s).run()


# Warm-up inputs: a short and a longer pair, so the first batches of both shapes are paid for
# before real traffic (allocator growth, kernel selection, tokenizer caches).
_WARMUP_ITEMS = [
    [{"role": "user", "content": "Write add(a, b)."},
     {"role": "assistant", "content": "def add(a, b):\n    return a + b\n"}],
    [{"role": "user", "content": "Write a function that sorts a list. " * 20},
     {"role": "assistant", "content": "def f(xs):\n    return sorted(xs)\n" * 20}],
]


async def warm_up(registry: Any) -> None:
    """Score a couple of items with every loaded model; failures are logged, never raised."""
    for name in registry.names():
        began = time.perf_counter()
        try:
            await registry.get(name).score(_WARMUP_ITEMS)
        except Exception:
            log.exception("warm-up failed", extra={"model": name})
            continue
        log.info("model warmed up", extra={
            "model": name, "seconds": round(time.perf_counter() - began, 3)})

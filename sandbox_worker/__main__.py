"""`python -m sandbox_worker`: print settings (secrets masked), then serve the Redis job stream."""

from __future__ import annotations

import json
import logging
import signal
import sys
from types import FrameType

import redis
from prometheus_client import start_http_server

from sandbox_worker.config import WorkerSettings
from sandbox_worker.logs import setup_logging
from sandbox_worker.startup import UnisolatedRefused, start_executor
from sandbox_worker.worker import Worker, WorkerMetrics

log = logging.getLogger("codereward.worker")


def main() -> int:
    """Entry point; returns the exit code."""
    settings = WorkerSettings()
    setup_logging(settings.log_level, settings.log_json)
    log.info("settings %s", json.dumps(settings.masked(), default=str))
    try:
        executor = start_executor(settings)
    except UnisolatedRefused as exc:
        log.error("%s", exc)
        return 2
    metrics = WorkerMetrics()
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, registry=metrics.registry)
    # the socket timeout must outlast a blocking XREADGROUP
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True,
                                  socket_timeout=settings.read_block_s + 10,
                                  socket_connect_timeout=5, health_check_interval=30)
    worker = Worker(settings, executor, client, metrics)

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: draining", signum)
        worker.stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    log.info("worker up", extra={"isolation": executor.isolation,
                                 "metrics_port": settings.worker_metrics_port})
    try:
        drained = worker.run()
    finally:
        executor.close()
        client.close()
    return 0 if drained else 1


if __name__ == "__main__":
    sys.exit(main())

"""`python -m sandbox_worker`: print settings (secrets masked), then serve the Redis job stream."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from types import FrameType

import redis
from prometheus_client import start_http_server

from sandbox_worker.config import WorkerSettings
from sandbox_worker.executor import Executor
from sandbox_worker.worker import Worker, WorkerMetrics

log = logging.getLogger("codereward.worker")
_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


class _JsonFormatter(logging.Formatter):
    """One JSON object per line; extra= fields become keys (same shape as the service's)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) \
                    else repr(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _setup_logging(level: str, json_lines: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if json_lines else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def main() -> int:
    """Entry point; returns the exit code."""
    settings = WorkerSettings()
    _setup_logging(settings.log_level, settings.log_json)
    log.info("settings %s", json.dumps(settings.masked(), default=str))
    executor = Executor(workers=settings.sandbox_workers, isolation=settings.sandbox_isolation,
                        nproc=settings.sandbox_nproc, fsize_mb=settings.sandbox_fsize_mb,
                        nofile=settings.sandbox_nofile)
    executor.start()
    if settings.production and executor.isolation == "none" and not settings.allow_unisolated:
        executor.close()
        log.error("production mode needs namespace isolation, which this host does not allow; "
                  "set CODEREWARD_ALLOW_UNISOLATED=true to run programs unisolated anyway")
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

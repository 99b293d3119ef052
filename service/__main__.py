"""`python -m service`: print settings (secrets masked) and run uvicorn."""

from __future__ import annotations

import json
import logging

from sandbox_worker.logs import setup_logging
from service import allocator
from service.config import Settings

log = logging.getLogger("codereward")


def try_next(settings: Settings) -> str:
    """The URL and a first request or two to try (what `make serve` shows a new user)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{host}:{settings.port}"
    auth = ' -H "Authorization: Bearer $KEY"' if settings.api_keys else ""
    lines = [f"codereward: {url} (ready when {url}/readyz answers 200; API docs at {url}/docs)",
             "try next:"]
    if not settings.models_disabled():
        lines.append(f"  curl -s {url}/score{auth} -H 'Content-Type: application/json' -d "
                     "'{\"items\": [{\"prompt\": \"Write add(a, b).\", "
                     "\"response\": \"def add(a, b):\\n    return a + b\"}]}'")
    lines.append(f"  curl -s {url}/execute-tests{auth} -H 'Content-Type: application/json' -d "
                 "'{\"submissions\": [{\"code\": \"def add(a, b):\\n    return a + b\", "
                 "\"tests\": [\"assert add(1, 2) == 3\"]}]}'")
    return "\n".join(lines)


def main() -> None:
    """Entry point."""
    settings = Settings()
    tuned = allocator.reexec_tuned(enabled=settings.malloc_tuning)  # before the heavy imports
    from service.http.app import create_app
    from service.http.lifecycle import serve

    setup_logging(settings.log_level, settings.log_json)
    log.info("settings %s", json.dumps(settings.masked(), default=str))
    log.info("allocator: %s", "glibc tuned (one arena, 1 GiB mmap threshold)" if tuned
             else "default")
    app = create_app(settings)
    log.info("codereward listening on http://%s:%d", settings.host, settings.port)
    for line in try_next(settings).splitlines():  # one record a line: readable in JSON too
        log.info("%s", line)
    # SIGTERM drains (readyz 503, in-flight requests finish) for up to shutdown_grace_s
    serve(app, host=settings.host, port=settings.port, grace_s=settings.shutdown_grace_s)


if __name__ == "__main__":
    main()

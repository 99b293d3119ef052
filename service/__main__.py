"""`python -m service`: print settings (secrets masked) and run uvicorn."""

from __future__ import annotations

import json
import logging

from sandbox_worker.logs import setup_logging
from service.app import create_app
from service.config import Settings
from service.lifecycle import serve

log = logging.getLogger("codereward")


def main() -> None:
    """Entry point."""
    settings = Settings()
    setup_logging(settings.log_level, settings.log_json)
    log.info("settings %s", json.dumps(settings.masked(), default=str))
    app = create_app(settings)
    log.info("codereward listening on http://%s:%d", settings.host, settings.port)
    # SIGTERM drains (readyz 503, in-flight requests finish) for up to shutdown_grace_s
    serve(app, host=settings.host, port=settings.port, grace_s=settings.shutdown_grace_s)


if __name__ == "__main__":
    main()

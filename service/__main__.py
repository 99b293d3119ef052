"""`python -m service`: print settings (secrets masked) and run uvicorn."""

from __future__ import annotations

import json
import logging

import uvicorn

from service.app import create_app
from service.config import Settings
from service.logs import setup_logging

log = logging.getLogger("codereward")


def main() -> None:
    """Entry point."""
    settings = Settings()
    setup_logging(settings.log_level, settings.log_json)
    log.info("settings %s", json.dumps(settings.masked(), default=str))
    app = create_app(settings)
    log.info("codereward listening on http://%s:%d", settings.host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None,
                timeout_graceful_shutdown=30)


if __name__ == "__main__":
    main()

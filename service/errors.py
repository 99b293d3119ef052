"""Service errors: each carries its HTTP status; one handler maps them (API.md error table)."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service answers on purpose."""

    status_code: int = 500
    headers: dict[str, str] | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(ServiceError):
    """400: a well-formed body that cannot be served (e.g. nothing to score)."""

    status_code = 400


class Unauthorized(ServiceError):
    """401: API keys configured and the key is missing or wrong."""

    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": "Bearer"}


class NotFound(ServiceError):
    """404: unknown model or route."""

    status_code = 404


class TooLarge(ServiceError):
    """413: body, item count or text length over the configured limit."""

    status_code = 413


class Unprocessable(ServiceError):
    """422: field values the schema could not catch."""

    status_code = 422


class Overloaded(ServiceError):
    """429: queue full; the client should retry after `retry_after_s`."""

    status_code = 429

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, retry_after_s))}


class NotReady(ServiceError):
    """503: models loading, shutting down, or the sandbox backend unreachable."""

    status_code = 503

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, retry_after_s))}


class DeadlineExceeded(ServiceError):
    """504: execution did not finish before the request's deadline."""

    status_code = 504

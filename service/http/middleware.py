"""ASGI middleware: request ids, body-size limit (413), HTTP metrics, no-trace 500s."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import Metrics

log = logging.getLogger("codereward.http")

REQUEST_ID_HEADER = "x-request-id"


class _BodyTooLarge(Exception):
    pass


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


async def _send_json(send: Send, status: int, body: dict[str, Any],
                     headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()), *headers]})
    await send({"type": "http.response.body", "body": payload})


class RequestContextMiddleware:
    """Outermost layer: every request gets an id, a size limit, metrics and a clean 500."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")[:128]
        request_id = incoming if incoming.isprintable() and incoming else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        rid_header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        status_holder = {"status": 500, "started": False, "answered": False}
        start = time.perf_counter()
        limit = self.max_body_bytes

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, {"detail": f"body over {limit} bytes"}, [rid_header])
            self._observe(scope, 413, start)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not status_holder["started"]:
                        # answer now: the framework may catch the exception and try a 400
                        status_holder.update(status=413, started=True, answered=True)
                        await _send_json(send, 413, {"detail": f"body over {limit} bytes"},
                                         [rid_header])
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            if status_holder["answered"]:
                return
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], rid_header]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            pass
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if not status_holder["started"]:
                status_holder["status"] = 500
                await _send_json(
                    send, 500,
                    {"detail": "internal error", "request_id": request_id}, [rid_header])
        finally:
            self.metrics.in_flight.dec()
            self._observe(scope, int(status_holder["status"]), start)

    def _observe(self, scope: Scope, status: int, start: float) -> None:
        labels = (scope.get("method", "GET"), _route_label(scope), str(status))
        self.metrics.requests.labels(*labels).inc()
        self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)

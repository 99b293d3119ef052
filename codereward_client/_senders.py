"""Async HTTP senders for AsyncCodeRewardClient: aiohttp when installed, else httpx.

Both return (status, headers, body bytes) and raise SendError for connection-level failures,
so the client's retry logic is the same whichever library carries the request. aiohttp costs
about a seventh of httpx's CPU per request (measured: 0.4 vs 2.7 ms), which matters when
a trainer fires thousands of single-sample requests from one process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

_SHARD_CONNECTIONS = 4  # connections per httpx pool (its pool scans are O(connections x waiters))

Reply = tuple[int, Mapping[str, str], bytes]


class SendError(Exception):
    """The request did not get an HTTP answer (refused, reset, timed out)."""


class Sender(Protocol):
    async def post(self, path: str, body: Any) -> Reply: ...

    async def aclose(self) -> None: ...


class HttpxSender:
    """httpx, sharded into small pools, each fed by its own semaphore."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout_s: float,
                 max_connections: int, transport: httpx.AsyncBaseTransport | None = None,
                 ) -> None:
        shards = max(1, -(-max_connections // _SHARD_CONNECTIONS))
        per_shard = max(1, -(-max_connections // shards))
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        self._clients = [httpx.AsyncClient(base_url=base_url, headers=dict(headers),
                                           timeout=timeout, limits=limits, transport=transport)
                         for _ in range(shards)]
        self._slots = [asyncio.Semaphore(per_shard) for _ in range(shards)]
        self._next = 0

    async def post(self, path: str, body: Any) -> Reply:
        shard = self._next = (self._next + 1) % len(self._clients)
        try:
            async with self._slots[shard]:
                response = await self._clients[shard].post(path, json=body)
        except httpx.TransportError as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code, response.headers, response.content

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


class AiohttpSender:
    """aiohttp with one pooled session, opened on first use (it must be made inside a loop)."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout_s: float,
                 max_connections: int) -> None:
        self._base_url = base_url
        self._headers = {**headers, "Content-Type": "application/json"}
        self._timeout_s = timeout_s
        self._max_connections = max_connections
        self._session: Any = None
        # callers queue here, so aiohttp's timeouts count from when a connection is free
        # (its own pool wait is part of `total` and `connect`)
        self._slots = asyncio.Semaphore(max_connections)

    async def post(self, path: str, body: Any) -> Reply:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                timeout=aiohttp.ClientTimeout(total=self._timeout_s,
                                              sock_connect=min(10.0, self._timeout_s)),
                headers=self._headers)
        try:
            async with self._slots, self._session.post(
                    self._base_url + path, data=json.dumps(body).encode()) as response:
                return response.status, response.headers, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_sender(backend: str, base_url: str, headers: Mapping[str, str], timeout_s: float,
                max_connections: int, transport: httpx.AsyncBaseTransport | None) -> Sender:
    """`auto`: aiohttp when importable (and no httpx transport was given), else httpx."""
    if backend == "auto":
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            backend = "httpx"
        else:
            backend = "httpx" if transport is not None else "aiohttp"
    if backend == "aiohttp":
        return AiohttpSender(base_url, headers, timeout_s, max_connections)
    if backend == "httpx":
        return HttpxSender(base_url, headers, timeout_s, max_connections, transport)
    raise ValueError(f"unknown HTTP backend {backend!r}: auto, aiohttp or httpx")

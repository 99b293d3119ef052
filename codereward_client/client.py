"""HTTP clients for codereward: sync (httpx) and async (aiohttp or httpx), pooled, retrying.

Retries: connection errors and 429/502/503 are retried up to `retries` times with
exponential backoff (`backoff_s` doubling, capped at `max_backoff_s`), waiting at least the
server's `Retry-After`. Other errors (4xx, 504 past the server's deadline) raise at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from codereward_client._senders import SendError, make_sender

DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({429, 502, 503})

Json = dict[str, Any]


class CodeRewardError(RuntimeError):
    """The server answered with an error, or could not be reached after all retries."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked us to wait (`Retry-After`: seconds or an HTTP date)."""
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class _Base:
    """Settings and request/response handling shared by both clients."""

    def __init__(self, base_url: str | None = None, *, api_key: str | None = None,
                 timeout_s: float = 180.0, retries: int = 5, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, max_connections: int = 64) -> None:
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.base_url = (base_url or os.environ.get("CODEREWARD_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("CODEREWARD_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s

    def _delay(self, attempt: int, headers: Mapping[str, str] | None) -> float:
        """Backoff before retry `attempt` (0-based): jittered exponential, >= Retry-After."""
        backoff = min(self.max_backoff_s, self.backoff_s * 2.0 ** attempt)
        backoff *= 0.5 + random.random() / 2  # jitter: spread retries of many coroutines
        asked = _retry_after(headers)
        if asked is None:
            return backoff
        return float(min(self.max_backoff_s, max(backoff, asked)))

    @staticmethod
    def _result(status: int, content: bytes) -> Json:
        if status >= 400:
            try:
                detail = json.loads(content).get("detail", content.decode(errors="replace"))
            except (ValueError, AttributeError):
                detail = content.decode(errors="replace")
            raise CodeRewardError(f"HTTP {status}: {detail}", status)
        body: Json = json.loads(content)
        return body


def _score_body(items: Sequence[Any], model: str | None) -> Json:
    norm = []
    for item in items:
        if isinstance(item, Mapping):
            norm.append(dict(item))
        else:  # a (prompt, response) pair
            prompt, response = item
            norm.append({"prompt": prompt, "response": response})
    return {"items": norm, **({"model": model} if model else {})}


def _rerank_body(prompt: str, candidates: Sequence[str], top_k: int | None,
                 tests: Sequence[str] | None, model: str | None) -> Json:
    body: Json = {"prompt": prompt, "candidates": list(candidates)}
    if top_k is not None:
        body["top_k"] = top_k
    if tests is not None:
        body["tests"] = list(tests)
    if model:
        body["model"] = model
    return body


def _execute_body(submissions: Sequence[Mapping[str, Any]], timeout_s: float | None,
                  memory_mb: int | None) -> Json:
    body: Json = {"submissions": [dict(s) for s in submissions]}
    if timeout_s is not None:
        body["timeout_s"] = timeout_s
    if memory_mb is not None:
        body["memory_mb"] = memory_mb
    return body


def _reward_body(query: Sequence[str], prompts: Sequence[str | None] | None,
                 labels: Sequence[Any] | None, mode: str | None, model: str | None) -> Json:
    body: Json = {"query": list(query)}
    if prompts is not None:
        body["prompts"] = list(prompts)
    if labels is not None:
        body["labels"] = list(labels)
    if mode:
        body["mode"] = mode
    if model:
        body["model"] = model
    return body


class CodeRewardClient(_Base):
    """Blocking client; one pooled connection set per instance. Use as a context manager."""

    def __init__(self, base_url: str | None = None, *, transport: httpx.BaseTransport | None = None,
                 **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._http = httpx.Client(
            base_url=self.base_url, headers=self.headers, transport=transport,
            timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
            limits=httpx.Limits(max_connections=self.max_connections,
                                max_keepalive_connections=self.max_connections))

    def _post(self, path: str, body: Json) -> Json:
        error = CodeRewardError("no attempt made")
        for attempt in range(self.retries + 1):
            headers: Mapping[str, str] | None = None
            try:
                response = self._http.post(path, json=body)
                if response.status_code not in RETRY_STATUSES:
                    return self._result(response.status_code, response.content)
                headers = response.headers
                error = CodeRewardError(f"HTTP {response.status_code} after {attempt + 1} tries",
                                        response.status_code)
            except httpx.TransportError as exc:
                error = CodeRewardError(f"{type(exc).__name__}: {exc}")
            if attempt < self.retries:
                time.sleep(self._delay(attempt, headers))
        raise error

    def score(self, items: Sequence[Any], *, model: str | None = None) -> list[float]:
        """Reward-model scores of (prompt, response) pairs or `{"messages": [...]}` items."""
        return [float(s) for s in self._post("/score", _score_body(items, model))["scores"]]

    def rerank(self, prompt: str, candidates: Sequence[str], *, top_k: int | None = None,
               tests: Sequence[str] | None = None, model: str | None = None) -> list[Json]:
        """Best-first `{index, score, pass_rate}` results."""
        results: list[Json] = self._post(
            "/rerank", _rerank_body(prompt, candidates, top_k, tests, model))["results"]
        return results

    def execute_tests(self, submissions: Sequence[Mapping[str, Any]], *,
                      timeout_s: float | None = None, memory_mb: int | None = None) -> list[Json]:
        """One result per `{code, tests}` submission, in order."""
        results: list[Json] = self._post(
            "/execute-tests", _execute_body(submissions, timeout_s, memory_mb))["results"]
        return results

    def get_reward(self, query: Sequence[str], prompts: Sequence[str | None] | None = None,
                   labels: Sequence[Any] | None = None, *, mode: str | None = None,
                   model: str | None = None) -> Json:
        """`{rewards, scores, extra_logs, details}` for full prompt+response texts."""
        return self._post("/get_reward", _reward_body(query, prompts, labels, mode, model))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CodeRewardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCodeRewardClient(_Base):
    """asyncio client with the same methods; share one across coroutines for pooling.

    `http`: `auto` (aiohttp when installed, else httpx), `aiohttp` or `httpx`.
    """

    def __init__(self, base_url: str | None = None, *, http: str = "auto",
                 transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._sender = make_sender(http, self.base_url, self.headers, self.timeout_s,
                                   self.max_connections, transport)

    async def _post(self, path: str, body: Json) -> Json:
        error = CodeRewardError("no attempt made")
        for attempt in range(self.retries + 1):
            headers: Mapping[str, str] | None = None
            try:
                status, headers, content = await self._sender.post(path, body)
                if status not in RETRY_STATUSES:
                    return self._result(status, content)
                error = CodeRewardError(f"HTTP {status} after {attempt + 1} tries", status)
            except SendError as exc:
                error = CodeRewardError(str(exc))
            if attempt < self.retries:
                await asyncio.sleep(self._delay(attempt, headers))
        raise error

    async def score(self, items: Sequence[Any], *, model: str | None = None) -> list[float]:
        """Reward-model scores of (prompt, response) pairs or `{"messages": [...]}` items."""
        body = await self._post("/score", _score_body(items, model))
        return [float(s) for s in body["scores"]]

    async def rerank(self, prompt: str, candidates: Sequence[str], *, top_k: int | None = None,
                     tests: Sequence[str] | None = None,
                     model: str | None = None) -> list[Json]:
        """Best-first `{index, score, pass_rate}` results."""
        body = await self._post("/rerank", _rerank_body(prompt, candidates, top_k, tests, model))
        results: list[Json] = body["results"]
        return results

    async def execute_tests(self, submissions: Sequence[Mapping[str, Any]], *,
                            timeout_s: float | None = None,
                            memory_mb: int | None = None) -> list[Json]:
        """One result per `{code, tests}` submission, in order."""
        body = await self._post("/execute-tests",
                                _execute_body(submissions, timeout_s, memory_mb))
        results: list[Json] = body["results"]
        return results

    async def get_reward(self, query: Sequence[str], prompts: Sequence[str | None] | None = None,
                         labels: Sequence[Any] | None = None, *, mode: str | None = None,
                         model: str | None = None) -> Json:
        """`{rewards, scores, extra_logs, details}` for full prompt+response texts."""
        return await self._post("/get_reward",
                                _reward_body(query, prompts, labels, mode, model))

    async def aclose(self) -> None:
        await self._sender.aclose()

    async def __aenter__(self) -> AsyncCodeRewardClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

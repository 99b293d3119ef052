"""Client for any OpenAI-compatible chat endpoint: concurrency, retries, a disk cache.

The cache key is a hash of the request body (model, messages, sampling settings and a
sample index), never of the API key, so rerunning a stage does not pay twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass
class LLMSettings:
    """Endpoint and client limits (CLI flags of the synth and sample stages)."""

    base_url: str = "http://127.0.0.1:8001/v1"
    model: str = "gpt-4o-mini"
    api_key: str = field(default_factory=lambda: os.environ.get("OPENAI_API_KEY", ""))
    concurrency: int = 8  # requests in flight
    max_retries: int = 5
    backoff_s: float = 1.0  # first retry delay; doubles each attempt (plus jitter)
    timeout_s: float = 120.0  # per request
    cache_dir: str = ".cache/codereward-llm"  # "" disables the cache


class LLMError(RuntimeError):
    """The endpoint failed after all retries, or answered something unusable."""


class ChatClient:
    """Async chat-completions client; `complete` returns one text per requested sample."""

    def __init__(self, settings: LLMSettings) -> None:
        self.s = settings
        self._sem = asyncio.Semaphore(max(1, settings.concurrency))
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self._http = httpx.AsyncClient(base_url=settings.base_url.rstrip("/"),
                                       headers=headers, timeout=settings.timeout_s)
        self.requests_sent = 0  # HTTP attempts made (cache hits excluded)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _cache_path(self, body: dict[str, Any], index: int) -> Path | None:
        if not self.s.cache_dir:
            return None
        blob = json.dumps([self.s.base_url, body, index], sort_keys=True, ensure_ascii=False)
        key = hashlib.sha256(blob.encode("utf-8")).hexdigest()
        return Path(self.s.cache_dir) / key[:2] / f"{key}.json"

    async def complete(self, messages: Sequence[dict[str, str]], *, temperature: float = 0.0,
                       max_tokens: int = 1024, n: int = 1, top_p: float = 1.0,
                       json_mode: bool = False) -> list[str]:
        """`n` completions (cached each under its sample index)."""
        body: dict[str, Any] = {"model": self.s.model, "messages": list(messages),
                                "temperature": temperature, "max_tokens": max_tokens,
                                "top_p": top_p}
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        out: list[str | None] = [None] * n
        for i in range(n):
            path = self._cache_path(body, i)
            if path is not None and path.exists():
                out[i] = json.loads(path.read_text())["content"]
        missing = [i for i in range(n) if out[i] is None]
        while missing:
            texts = await self._post({**body, "n": len(missing)})
            for i, t in zip(missing, texts, strict=False):
                out[i] = t
                path = self._cache_path(body, i)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps({"content": t}))
                    tmp.replace(path)
            missing = [i for i in range(n) if out[i] is None]  # servers that ignore `n`
        return [t for t in out if t is not None]

    async def _post(self, body: dict[str, Any]) -> list[str]:
        last: Exception | None = None
        for attempt in range(self.s.max_retries + 1):
            if attempt:
                await asyncio.sleep(self._delay(attempt, last))
            async with self._sem:
                self.requests_sent += 1
                try:
                    resp = await self._http.post("/chat/completions", json=body)
                except httpx.HTTPError as e:
                    last = e
                    continue
            if resp.status_code in _RETRY_STATUS:
                last = _StatusError(resp)
                continue
            if resp.status_code >= 400:
                raise LLMError(f"chat endpoint answered {resp.status_code}: {resp.text[:200]}")
            try:
                choices = resp.json()["choices"]
                texts = [str(c["message"]["content"] or "") for c in choices]
            except (ValueError, KeyError, TypeError) as e:
                raise LLMError(f"unusable chat response: {resp.text[:200]}") from e
            if not texts:
                raise LLMError("chat response had no choices")
            return texts
        raise LLMError(f"chat endpoint failed after {self.s.max_retries} retries: {last}")

    def _delay(self, attempt: int, last: Exception | None) -> float:
        if isinstance(last, _StatusError):
            ra = last.response.headers.get("retry-after")
            if ra is not None:
                try:
                    return min(float(ra), 60.0)
                except ValueError:
                    pass
        return float(self.s.backoff_s * 2 ** (attempt - 1) * (1 + 0.1 * random.random()))


class _StatusError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response

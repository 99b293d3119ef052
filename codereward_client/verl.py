"""verl custom reward function backed by a codereward server (HTTP only; verl not imported).

    custom_reward_function.path=<this file> custom_reward_function.name=compute_score
    (batched: reward_model.reward_manager=batch, name=compute_score_batch)

Server address: `url=` (verl's `custom_reward_function.reward_kwargs`) or `CODEREWARD_URL`.
`ground_truth` carries the tests (a list of asserts, JSON text of one, or an AceCode-87K row);
the question for the reward model comes from `extra_info["question"]` or `["prompt"]`.
Every result has the same keys (verl stacks them): score, rm_score, pass_rate, all_pass, error.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from codereward_client._texts import as_label, as_query
from codereward_client.client import AsyncCodeRewardClient, CodeRewardClient, Json

_lock = threading.Lock()
_clients: dict[tuple[int, str | None, str | None], CodeRewardClient] = {}


def _client(url: str | None, api_key: str | None) -> CodeRewardClient:
    """One pooled client per process (verl may fork reward workers) and server."""
    key = (os.getpid(), url, api_key)
    with _lock:
        if key not in _clients:
            _clients[key] = CodeRewardClient(url, api_key=api_key)
        return _clients[key]


def _question(extra_info: Mapping[str, Any] | None) -> Any:
    if not extra_info:
        return None
    for key in ("question", "prompt", "problem"):
        if extra_info.get(key):
            return extra_info[key]
    return None


def _request(solutions: Sequence[str], ground_truths: Sequence[Any],
             extra_infos: Sequence[Mapping[str, Any] | None],
             ) -> tuple[list[str], list[str], list[Any]]:
    queries, prompts = [], []
    for solution, info in zip(solutions, extra_infos, strict=True):
        query, prompt = as_query(_question(info), solution)
        queries.append(query)
        prompts.append(prompt)
    return queries, prompts, [as_label(g) for g in ground_truths]


def _rows(body: Json, n: int) -> list[dict[str, float]]:
    logs = body.get("extra_logs") or {}
    out = []
    for i in range(n):
        out.append({"score": float(body["rewards"][i]),
                    "rm_score": float(logs.get("rm_score", [0.0] * n)[i]),
                    "pass_rate": float(logs.get("pass_rate", [0.0] * n)[i]),
                    "all_pass": float(logs.get("all_pass", [0.0] * n)[i]),
                    "error": 0.0})
    return out


def _failed(fallback_score: float | None, exc: Exception, n: int) -> list[dict[str, float]]:
    if fallback_score is None:
        raise exc
    return [{"score": fallback_score, "rm_score": 0.0, "pass_rate": 0.0, "all_pass": 0.0,
             "error": 1.0} for _ in range(n)]


def compute_score(data_source: str, solution_str: str, ground_truth: Any,
                  extra_info: Mapping[str, Any] | None = None, *, url: str | None = None,
                  mode: str | None = None, model: str | None = None,
                  api_key: str | None = None, fallback_score: float | None = None,
                  **_: Any) -> dict[str, float]:
    """verl's per-sample reward: dict with `score` plus logged parts.

    `fallback_score`: when set, a server failure (after the client's retries) gives this score
    with `error=1.0` instead of raising.
    """
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info],
                               url=url, mode=mode, model=model, api_key=api_key,
                               fallback_score=fallback_score)[0]


def compute_score_batch(data_sources: Sequence[str], solution_strs: Sequence[str],
                        ground_truths: Sequence[Any],
                        extra_infos: Sequence[Mapping[str, Any] | None] | None = None, *,
                        url: str | None = None, mode: str | None = None,
                        model: str | None = None, api_key: str | None = None,
                        fallback_score: float | None = None, chunk_size: int = 64,
                        concurrency: int = 8, **_: Any) -> list[dict[str, float]]:
    """verl's batch reward manager entry: one result dict per sample, in order.

    Sent as concurrent requests of `chunk_size` samples so the server can batch the model and
    spread execution over its workers.
    """
    n = len(solution_strs)
    infos = list(extra_infos) if extra_infos is not None else [None] * n
    queries, prompts, labels = _request(solution_strs, ground_truths, infos)
    client = _client(url, api_key)

    def one(start: int) -> list[dict[str, float]]:
        end = min(n, start + chunk_size)
        try:
            body = client.get_reward(queries[start:end], prompts[start:end], labels[start:end],
                                     mode=mode, model=model)
        except Exception as exc:  # the client already retried; apply the caller's fallback
            return _failed(fallback_score, exc, end - start)
        return _rows(body, end - start)

    starts = list(range(0, n, chunk_size))
    if len(starts) <= 1:
        return one(0) if n else []
    with ThreadPoolExecutor(max_workers=min(concurrency, len(starts))) as pool:
        return [row for chunk in pool.map(one, starts) for row in chunk]


async def compute_score_async(data_source: str, solution_str: str, ground_truth: Any,
                              extra_info: Mapping[str, Any] | None = None, *,
                              url: str | None = None, mode: str | None = None,
                              model: str | None = None, api_key: str | None = None,
                              fallback_score: float | None = None,
                              client: AsyncCodeRewardClient | None = None,
                              **_: Any) -> dict[str, float]:
    """Async variant for verl's reward loop; pass a shared `client` to pool connections."""
    queries, prompts, labels = _request([solution_str], [ground_truth], [extra_info])
    own = client is None
    http = client or AsyncCodeRewardClient(url, api_key=api_key)
    try:
        body = await http.get_reward(queries, prompts, labels, mode=mode, model=model)
    except Exception as exc:
        return _failed(fallback_score, exc, 1)[0]
    finally:
        if own:
            await http.aclose()
    return _rows(body, 1)[0]

"""TRL GRPO reward function backed by a codereward server (HTTP only; TRL not imported).

    from codereward_client.trl import make_reward_func
    trainer = GRPOTrainer(..., reward_funcs=[make_reward_func("http://host:8000", mode="tests")])

TRL calls `reward_func(prompts, completions, **columns)`; prompts and completions are strings
or, for conversational datasets, lists of `{"role", "content"}` messages. The tests come from a
dataset column (`tests_column`, default: the first of `tests`, `test_cases`, `test_list`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from codereward_client._texts import Messages, as_label, as_query
from codereward_client.client import CodeRewardClient

TEST_COLUMNS = ("tests", "test_cases", "test_list")

RewardFunc = Callable[..., list[float | None]]


def _tests(columns: dict[str, Any], column: str | None, n: int) -> list[Any] | None:
    names = [column] if column else [c for c in TEST_COLUMNS if c in columns]
    for name in names:
        values = columns.get(name)
        if values is not None:
            if len(values) != n:
                raise ValueError(f"column {name!r} has {len(values)} rows for {n} completions")
            return [as_label(v) for v in values]
    if column:
        raise KeyError(f"dataset column {column!r} not passed to the reward function")
    return None


def make_reward_func(url: str | None = None, *, mode: str | None = "tests",
                     tests_column: str | None = None, model: str | None = None,
                     api_key: str | None = None, raise_errors: bool = True,
                     fallback: float | None = None,
                     chunk_size: int = 256, timeout_s: float = 180.0,
                     client: CodeRewardClient | None = None) -> RewardFunc:
    """A GRPO reward function; rewards per completion, in order.

    `mode`: `tests` (pass rate), `rm` (reward model) or `hybrid`; None uses the server's.
    `raise_errors=False`: on a server failure (after the client's retries) return `fallback`
    for every completion instead of raising (None: TRL ignores this function for the batch).
    """
    http = client or CodeRewardClient(url, api_key=api_key, timeout_s=timeout_s)

    def reward_func(prompts: Sequence[str | Messages] | None,
                    completions: Sequence[str | Messages], **columns: Any) -> list[float | None]:
        n = len(completions)
        prompt_list = list(prompts) if prompts is not None else [None] * n
        pairs = [as_query(p, c) for p, c in zip(prompt_list, completions, strict=True)]
        labels = _tests(columns, tests_column, n) if mode != "rm" else None
        rewards: list[float | None] = []
        try:
            for start in range(0, n, chunk_size):
                chunk = pairs[start:start + chunk_size]
                body = http.get_reward(
                    [q for q, _ in chunk], [p for _, p in chunk],
                    labels[start:start + chunk_size] if labels is not None else None,
                    mode=mode, model=model)
                rewards.extend(float(r) for r in body["rewards"])
        except Exception:
            if raise_errors:
                raise
            return [fallback] * n
        return rewards

    reward_func.__name__ = f"codereward_{mode or 'server'}"  # TRL logs rewards by this name
    return reward_func

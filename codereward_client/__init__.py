"""Python client for codereward (HTTP only) and adapters for RL trainers.

`CodeRewardClient` / `AsyncCodeRewardClient`: score, rerank, execute_tests, get_reward.
Adapters (import the one you need; none imports its trainer):
`codereward_client.verl.compute_score`, `codereward_client.trl.make_reward_func`,
`codereward_client.openrlhf` (notes and a `reward_func` for OpenRLHF's `.py` path).
"""

from __future__ import annotations

from codereward_client.client import AsyncCodeRewardClient, CodeRewardClient, CodeRewardError

__all__ = ["AsyncCodeRewardClient", "CodeRewardClient", "CodeRewardError"]

"""OpenRLHF integration notes, plus a `reward_func` for its `.py` reward path.

OpenRLHF needs no code from us: point it at the server and it posts each rollout itself.

    --remote_rm_url http://host:8000/get_reward                 # server default mode
    --remote_rm_url http://host:8000/get_reward?mode=tests      # pass rate from --label_key
    --remote_rm_url http://h1:8000/get_reward,http://h2:8000/get_reward   # round-robin

(`--reward.remote_url` in newer releases.) Each sample is posted alone as
`{"query": [text], "prompts": [prompt], "labels": [label]}`; the server batches across
concurrent requests. Use `--label_key tests` (a dataset column holding a list of asserts or
an AceCode-87K row) for `tests`/`hybrid` rewards. The server answers `rewards`, `scores`
(pass rate where tests ran, used by dynamic filtering) and numeric `extra_logs`
(rm_score, pass_rate, all_pass, ...) that OpenRLHF logs.

Alternatively pass this file as `--remote_rm_url /path/to/codereward_client/openrlhf.py`:
OpenRLHF then calls `reward_func(queries, prompts, labels)` in a thread, which forwards to
the server at `CODEREWARD_URL` with mode `CODEREWARD_REWARD_MODE` (optional).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from codereward_client.client import CodeRewardClient, Json

_client: CodeRewardClient | None = None


def reward_func(queries: Sequence[str], prompts: Sequence[str],
                labels: Sequence[Any]) -> Json:
    """OpenRLHF's custom reward function signature; returns the server's JSON as is."""
    global _client
    if _client is None:
        _client = CodeRewardClient()
    mode = os.environ.get("CODEREWARD_REWARD_MODE") or None
    return _client.get_reward(list(queries), list(prompts), list(labels), mode=mode)

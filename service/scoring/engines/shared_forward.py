"""The prefix-shared forward of a decoder: run a group's prefix once, reuse its KV cache.

Unpadded (CPU): the prefix runs as one row; each continuation then runs as its own forward on
the cache (`DynamicCache`), which is cut back to the prefix after it. Padded (GPU): the cache
is repeated over the group's rows and the right-padded continuations run as one forward, with
an attention mask that covers prefix and continuation. Either way a member's hidden states are
the prefix's followed by its continuation's: (len, H), equal to the unshared forward's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from service.scoring.engines.base import Encoded
from service.scoring.engines.prefix import Group, group_by_prefix


@dataclass
class SharedPlan:
    """A batch split into prefix groups (what `prepare` hands the model thread)."""

    items: list[Encoded]
    groups: list[Group]


def plan(batch: Sequence[Encoded], min_shared_tokens: int) -> SharedPlan:
    """Group a batch for the shared forward."""
    items = list(batch)
    return SharedPlan(items, group_by_prefix(items, min_shared_tokens))


def group_hidden(base: Any, items: Sequence[Encoded], group: Group, device: torch.device, *,
                 padded: bool) -> list[torch.Tensor]:
    """Last hidden states (len_i, H) of each group member, in `group.members` order."""
    rows = [items[m].input_ids for m in group.members]
    if group.shared == 0:
        return [_plain(base, ids, device) for ids in rows]
    from transformers import DynamicCache

    p = group.shared
    cache = DynamicCache()
    prefix = torch.tensor([rows[0][:p]], device=device)
    head = base(input_ids=prefix, cache=cache, use_cache=True).last_hidden_state[0]
    if not padded:
        out = []
        for ids in rows:
            rest = torch.tensor([ids[p:]], device=device)
            tail = base(input_ids=rest, cache=cache,
                        use_cache=True).last_hidden_state[0]  # (len - p, H)
            cache.crop(-rest.shape[1])  # back to the prefix for the next continuation
            out.append(torch.cat([head, tail]))
        return out
    cache.batch_repeat_interleave(len(rows))
    width = max(len(ids) - p for ids in rows)
    rest = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), p + width), dtype=torch.long, device=device)
    mask[:, :p] = 1
    for r, ids in enumerate(rows):
        rest[r, :len(ids) - p] = torch.tensor(ids[p:], device=device)
        mask[r, p:p + len(ids) - p] = 1
    tails = base(input_ids=rest, attention_mask=mask, cache=cache,
                 use_cache=True).last_hidden_state  # (k, width, H)
    return [torch.cat([head, tails[r, :len(ids) - p]]) for r, ids in enumerate(rows)]


def _plain(base: Any, ids: list[int], device: torch.device) -> torch.Tensor:
    x = torch.tensor([ids], device=device)
    return base(input_ids=x, use_cache=False).last_hidden_state[0]  # type: ignore[no-any-return]

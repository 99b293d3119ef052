"""Prefix sharing: group items by their longest common token prefix, and what a group costs.

Best-of-N and GRPO score N responses to one prompt. A decoder's hidden states at a position
depend only on the tokens before it, so the rendered prompt (plus any response tokens the
candidates have in common) can run once and its KV cache serve every continuation. This module
is plain Python (no torch): the grouping the engines use, the token cost the batcher budgets
with (shared tokens counted once), and the batch selection that keeps a group together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.scoring.engines.base import Encoded


@dataclass(frozen=True)
class Group:
    """Batch indices that share their first `shared` tokens (0: run unshared)."""

    shared: int
    members: tuple[int, ...]


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _usable(lcp: int, lengths: Sequence[int]) -> int:
    # every continuation keeps at least one token: its forward is what scores it
    return max(0, min(lcp, min(lengths) - 1))


def group_cost(shared: int, lengths: Sequence[int], *, padded: bool) -> int:
    """Tokens one group costs: the prefix once, then the continuations (padded or not)."""
    rest = [n - shared for n in lengths]
    if not rest:
        return 0
    if shared == 0:
        return max(lengths) * len(lengths) if padded else sum(lengths)
    return shared + (max(rest) * len(rest) if padded else sum(rest))


def group_by_prefix(items: Sequence[Encoded], min_shared_tokens: int) -> list[Group]:
    """Partition a batch into prefix groups (lexicographic order, greedy, cost-driven).

    Items are sorted by their ids, so items with long common prefixes are neighbours. An item
    joins the current group when that costs fewer tokens than running it alone, and the group
    still shares at least `min_shared_tokens`; otherwise it starts a new group.
    """
    order = sorted(range(len(items)), key=lambda i: items[i].input_ids)
    groups: list[Group] = []
    members: list[int] = []
    lcp = 0
    for i in order:
        if not members:
            members, lcp = [i], len(items[i])
            continue
        new_lcp = min(lcp, common_prefix_len(items[members[-1]].input_ids, items[i].input_ids))
        lengths = [len(items[m]) for m in members]
        old = group_cost(_usable(lcp, lengths) if len(members) > 1 else 0, lengths,
                         padded=False)
        joined = [*lengths, len(items[i])]
        shared = _usable(new_lcp, joined)
        if shared >= min_shared_tokens and (
                group_cost(shared, joined, padded=False) < old + len(items[i])):
            members.append(i)
            lcp = new_lcp
            continue
        groups.append(_close(members, lcp, items))
        members, lcp = [i], len(items[i])
    if members:
        groups.append(_close(members, lcp, items))
    return groups


def _close(members: list[int], lcp: int, items: Sequence[Encoded]) -> Group:
    if len(members) == 1:
        return Group(0, (members[0],))
    return Group(_usable(lcp, [len(items[m]) for m in members]), tuple(sorted(members)))


def shared_cost(items: Sequence[Encoded], min_shared_tokens: int, *, padded: bool) -> int:
    """Tokens a batch costs with prefix sharing: each group's shared tokens once."""
    return sum(group_cost(g.shared, [len(items[m]) for m in g.members], padded=padded)
               for g in group_by_prefix(items, min_shared_tokens))


def select_shared(items: Sequence[Encoded], max_tokens: int, max_requests: int,
                  min_shared_tokens: int, *, padded: bool) -> list[int] | None:
    """Indices of a batch around the oldest item (index 0) and the items sharing its prefix.

    Partners are taken longest common prefix first (FIFO among equals) while they save tokens
    and the shared cost stays within `max_tokens`. None when the oldest item has no partner:
    the caller then forms an ordinary batch.
    """
    first = items[0].input_ids
    ranked = sorted(((common_prefix_len(first, items[i].input_ids), i)
                     for i in range(1, len(items))), key=lambda t: (-t[0], t[1]))
    chosen = [0]
    lcp = len(first)
    cost = len(first)
    for prefix_len, i in ranked:
        if len(chosen) >= max_requests or prefix_len < min_shared_tokens:
            break
        lengths = [len(items[c]) for c in chosen] + [len(items[i])]
        shared = _usable(min(lcp, prefix_len), lengths)
        if shared < min_shared_tokens:
            continue
        new_cost = group_cost(shared, lengths, padded=padded)
        if new_cost > max_tokens or new_cost >= cost + len(items[i]):
            continue
        chosen.append(i)
        lcp, cost = min(lcp, prefix_len), new_cost
    return chosen if len(chosen) > 1 else None

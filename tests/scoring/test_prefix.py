"""Prefix grouping, shared cost and batch selection (plain Python, no model)."""

from __future__ import annotations

from service.scoring.engines.base import Encoded
from service.scoring.engines.prefix import (
    Group,
    common_prefix_len,
    group_by_prefix,
    group_cost,
    select_shared,
    shared_cost,
)

PROMPT = list(range(100, 140))  # 40 shared tokens


def _items(*tails: list[int], prompt: list[int] = PROMPT) -> list[Encoded]:
    return [Encoded(prompt + t, score_from=len(prompt)) for t in tails]


def test_common_prefix_len() -> None:
    assert common_prefix_len([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix_len([1, 2], [1, 2, 3]) == 2
    assert common_prefix_len([], [1]) == 0


def test_one_prompt_is_one_group_sharing_the_prompt() -> None:
    items = _items([1, 2, 3], [4, 5], [6])
    assert group_by_prefix(items, 16) == [Group(40, (0, 1, 2))]
    # shared response tokens are shared too
    items = _items([7, 7, 1], [7, 7, 2])
    assert group_by_prefix(items, 16) == [Group(42, (0, 1))]


def test_mixed_prefixes_split_into_groups_and_singletons() -> None:
    other = list(range(300, 330))
    items = [*_items([1], [2]), *_items([3], [4], prompt=other), Encoded([9] * 20)]
    groups = group_by_prefix(items, 16)
    assert sorted(groups, key=lambda g: g.members) == [
        Group(40, (0, 1)), Group(30, (2, 3)), Group(0, (4,))]
    assert sorted(m for g in groups for m in g.members) == list(range(5))


def test_short_common_prefix_is_not_shared() -> None:
    items = _items([1], [2], prompt=list(range(10)))  # 10 < 16 shared tokens
    assert group_by_prefix(items, 16) == [Group(0, (0,)), Group(0, (1,))]


def test_a_continuation_keeps_at_least_one_token() -> None:
    items = [Encoded(PROMPT), Encoded([*PROMPT, 5, 6])]  # one item is the prefix itself
    assert group_by_prefix(items, 16) == [Group(39, (0, 1))]


def test_shared_cost_counts_shared_tokens_once() -> None:
    items = _items([1, 2, 3], [4, 5], [6])
    assert shared_cost(items, 16, padded=False) == 40 + 3 + 2 + 1
    assert shared_cost(items, 16, padded=True) == 40 + 3 * 3
    assert group_cost(0, [5, 7], padded=True) == 14
    assert group_cost(0, [5, 7], padded=False) == 12


def test_select_shared_takes_the_oldest_items_group_within_budget() -> None:
    other = list(range(300, 340))
    items = [*_items([1, 2]), *_items([3], prompt=other), *_items([4], [5], [6])]
    assert select_shared(items, 10_000, 64, 16, padded=False) == [0, 2, 3, 4]
    # budget: prompt once (40) + 2 + 1 + 1 = 44 tokens fits, the fourth member does not
    assert select_shared(items, 44, 64, 16, padded=False) == [0, 2, 3]
    assert select_shared(items, 10_000, 2, 16, padded=False) == [0, 2]
    assert select_shared(items[1:2] + items[:1], 10_000, 64, 16, padded=False) is None

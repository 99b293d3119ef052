"""Best-of-N ordering rules."""

from __future__ import annotations

import math

from service.scoring.ranking import rank


def test_without_pass_rates_orders_by_score_ties_by_index() -> None:
    out = rank([0.1, 0.9, 0.5, 0.9])
    assert [r.index for r in out] == [1, 3, 2, 0]
    assert all(r.pass_rate is None for r in out)


def test_pass_rate_first_then_score_then_index() -> None:
    out = rank([5.0, 1.0, 9.0, 1.0, 3.0], [0.5, 1.0, 0.5, 1.0, 0.0])
    assert [r.index for r in out] == [1, 3, 2, 0, 4]
    assert [r.pass_rate for r in out] == [1.0, 1.0, 0.5, 0.5, 0.0]


def test_top_k_trims_and_nan_sorts_last() -> None:
    out = rank([math.nan, 2.0, 1.0], top_k=2)
    assert [r.index for r in out] == [1, 2]
    assert len(rank([1.0, 2.0], top_k=5)) == 2

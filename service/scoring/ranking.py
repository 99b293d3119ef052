"""Best-of-N ordering: pass rate (when tests ran), then score; ties keep the lower index."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Ranked:
    """One candidate's place in the ranking."""

    index: int
    score: float
    pass_rate: float | None


def rank(scores: Sequence[float], pass_rates: Sequence[float] | None = None,
         top_k: int | None = None) -> list[Ranked]:
    """Candidates best first, trimmed to `top_k` (None: all)."""
    if pass_rates is not None and len(pass_rates) != len(scores):
        raise ValueError(f"{len(pass_rates)} pass rates for {len(scores)} scores")
    rows = [Ranked(i, s, None if pass_rates is None else pass_rates[i])
            for i, s in enumerate(scores)]

    def key(row: Ranked) -> tuple[float, float, int]:
        score = -math.inf if math.isnan(row.score) else row.score  # NaN sorts last
        return (-(row.pass_rate or 0.0), -score, row.index)

    rows.sort(key=key)
    return rows if top_k is None else rows[:top_k]

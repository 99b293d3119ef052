"""Preference pairs as token ids, each distinct (question, program) text encoded once.

A question's pairs share programs (with mutation candidates the reference is the chosen side
of most of them), so a micro-batch forwards each distinct text once and scores all its pairs
from those rewards. Batching by question (`batch_by="question"`) puts all pairs of a few
questions in one micro-batch: n programs carry up to n²/4 pairs for n forwards, so
mutant-vs-mutant pairs cost no extra compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.common.records import read_jsonl
from training.models.base import encode, render


@dataclass
class PairData:
    """Distinct encoded texts, pairs as indices into them, and pairs grouped by question."""

    texts: list[list[int]] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)  # per pair: index into texts
    rejected: list[int] = field(default_factory=list)
    groups: list[list[int]] = field(default_factory=list)  # pair indices per question

    def __len__(self) -> int:
        return len(self.chosen)


def load_pair_data(path: str | Path, tok: Any, max_length: int, limit: int = 0) -> PairData:
    """Read a pairs JSONL file (first `limit` pairs when set) into a PairData."""
    rows = list(read_jsonl(path)) if Path(path).exists() else []
    if limit:
        rows = rows[:limit]
    index: dict[str, int] = {}
    rendered: list[str] = []
    data = PairData()
    by_q: dict[str, list[int]] = {}

    def idx(question: str, program: str) -> int:
        text = render(tok, question, program)
        if text not in index:
            index[text] = len(rendered)
            rendered.append(text)
        return index[text]

    for i, r in enumerate(rows):
        data.chosen.append(idx(r["question"], r["chosen"]))
        data.rejected.append(idx(r["question"], r["rejected"]))
        by_q.setdefault(str(r.get("problem_id") or r["question"]), []).append(i)
    data.texts = encode(tok, rendered, max_length)
    data.groups = list(by_q.values())
    return data


def units(data: PairData, by_question: bool) -> list[list[int]]:
    """What one batch slot holds: all pairs of a question, or a single pair."""
    return data.groups if by_question else [[i] for i in range(len(data))]


def gather(data: PairData, pairs: list[int]) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """(distinct text indices to forward, chosen positions, rejected positions) for pairs."""
    pos: dict[int, int] = {}
    for i in pairs:
        for t in (data.chosen[i], data.rejected[i]):
            pos.setdefault(t, len(pos))
    ch = torch.tensor([pos[data.chosen[i]] for i in pairs], dtype=torch.long)
    rj = torch.tensor([pos[data.rejected[i]] for i in pairs], dtype=torch.long)
    return list(pos), ch, rj

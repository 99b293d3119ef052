"""Rewards for RL trainers: reward-model score, test pass rate, or a weighted hybrid.

Modes (request `mode`, else setting `reward_mode`):
- `rm`: the reward model's raw score of the recovered (user, assistant) turns.
- `tests`: pass rate of the code extracted from the response against the row's asserts,
  plus `reward_all_pass_bonus` when every assert passed. Every row must carry tests (422).
- `hybrid`: `reward_tests_weight * pass_rate + reward_rm_weight * rm_term + bonus * all_pass`,
  where `rm_term` is sigmoid(score) when `reward_rm_squash` (both parts then live in [0, 1])
  else the raw score. A row without tests gets the model part only.

`scores` (OpenRLHF uses it for dynamic filtering) is the pass rate where a row has tests,
else the raw model score. `extra_logs` holds numeric lists only, one value per query:
OpenRLHF turns each value into a tensor, so strings there would crash the trainer. The
per-query statuses (chat format, run status) go in `details`, which trainers ignore.
"""

from __future__ import annotations

import asyncio
import json
import math
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sandbox_worker import datasets, languages
from sandbox_worker.extract import extract_program
from sandbox_worker.protocol import Job, JobResult, TestSpec
from service.config import Settings
from service.errors import Unprocessable
from service.execution import SandboxBackend, build_jobs, deadline_for
from service.rewards.cache import VerdictCache
from service.rewards.turns import Conversation

# scores a batch of chat-message lists, in order (the model registry's Scorer.score)
ScoreFn = Callable[[Sequence[list[dict[str, str]]]], Awaitable[list[float]]]


class RewardMode(StrEnum):
    """Where the reward comes from."""

    RM = "rm"
    TESTS = "tests"
    HYBRID = "hybrid"


@dataclass
class RewardRow:
    """One query's reward and its parts."""

    reward: float = 0.0
    score: float = 0.0
    rm_score: float | None = None
    pass_rate: float | None = None
    passed: int | None = None
    total: int | None = None
    status: str | None = None  # run status, "no_code", or None when no tests ran
    format: str = "unknown"
    code_chars: int = 0


@dataclass
class RewardBatch:
    """Rewards for a request, in query order."""

    rows: list[RewardRow] = field(default_factory=list)

    def extra_logs(self) -> dict[str, list[float]]:
        """Numeric per-query logs (only the parts this request computed)."""
        logs: dict[str, list[float]] = {}
        if any(r.rm_score is not None for r in self.rows):
            logs["rm_score"] = [r.rm_score if r.rm_score is not None else 0.0 for r in self.rows]
        if any(r.pass_rate is not None for r in self.rows):
            logs["pass_rate"] = [r.pass_rate or 0.0 for r in self.rows]
            logs["all_pass"] = [float(r.pass_rate == 1.0) for r in self.rows]
            logs["has_tests"] = [float(r.pass_rate is not None) for r in self.rows]
            logs["program_ok"] = [float(r.status == "ok") for r in self.rows]
        return logs


def _tests_from(obj: object) -> list[str] | None:
    if isinstance(obj, list) and all(isinstance(t, str) for t in obj):
        return [t for t in obj if t.strip()]
    if isinstance(obj, dict):
        for key in ("test_cases", "tests", "test_list"):  # AceCode-87K, ours, MBPP
            if key in obj:
                return _tests_from(obj[key])
    return None


def parse_tests(label: Any, index: int) -> list[str] | TestSpec | None:
    """Tests carried by one label; None when the label is empty; 422 when malformed.

    Accepted: a list of assert strings, an object with `test_cases` (AceCode-87K row),
    `tests` or `test_list`, either as JSON text or as JSON values; plain text made of
    assert statements (one test per line that starts with `assert`); or a published stdio /
    call layout (APPS/TACO `input_output`, CodeContests, LiveCodeBench, verl
    `reward_model.ground_truth`: sandbox_worker.datasets).
    """
    if label is None or label == "" or label == [] or label == {}:
        return None
    value = label
    if isinstance(label, str):
        text = label.strip()
        try:
            value = json.loads(text)
        except ValueError:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if lines and all(ln.startswith(("assert ", "assert(")) for ln in lines):
                return lines
            raise Unprocessable(f"labels[{index}] is neither JSON nor assert lines") from None
    tests = _tests_from(value)
    if tests is None:
        try:
            spec = datasets.read_tests(value)
        except (datasets.LayoutError, ValueError, KeyError, TypeError, zlib.error) as exc:
            raise Unprocessable(f"labels[{index}]: malformed test layout: {exc}"[:300]) from None
        if spec is not None:
            if not _count(spec):
                raise Unprocessable(f"labels[{index}] has no test cases")
            return spec
        raise Unprocessable(
            f"labels[{index}] carries no tests: expected a list of assert strings, an object "
            "with test_cases, or a stdio/call layout (input_output, public_tests, "
            "public_test_cases, ground_truth)")
    if not tests:
        raise Unprocessable(f"labels[{index}] has an empty test list")
    return tests


def label_language(label: Any) -> str:
    """The `language` a label names (an object with a `language` key), default python."""
    value = label
    if isinstance(label, str) and label.lstrip().startswith("{"):
        try:
            value = json.loads(label)
        except ValueError:
            return "python"
    if isinstance(value, dict) and isinstance(value.get("language"), str):
        return str(value["language"])
    return "python"


def _count(tests: list[str] | TestSpec) -> int:
    if isinstance(tests, list):
        return len(tests)
    return Job(code="", tests=tests, timeout_s=1, memory_mb=64).n_tests()


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _combine(row: RewardRow, mode: RewardMode, settings: Settings) -> None:
    all_pass = float(row.pass_rate == 1.0)
    bonus = settings.reward_all_pass_bonus * all_pass
    if mode is RewardMode.RM:
        row.reward = row.score = row.rm_score or 0.0
        return
    if mode is RewardMode.TESTS:
        row.reward = (row.pass_rate or 0.0) + bonus
        row.score = row.pass_rate or 0.0
        return
    rm = row.rm_score or 0.0
    rm_term = _sigmoid(rm) if settings.reward_rm_squash else rm
    row.reward = settings.reward_rm_weight * rm_term
    row.score = rm
    if row.pass_rate is not None:
        row.reward += settings.reward_tests_weight * row.pass_rate + bonus
        row.score = row.pass_rate


async def _execute(conversations: Sequence[Conversation],
                   tests: Sequence[list[str] | TestSpec | None], langs: Sequence[str],
                   rows: list[RewardRow], settings: Settings, sandbox: SandboxBackend,
                   cache: VerdictCache | None) -> None:
    """Run every row that has tests; fills pass rates and statuses in `rows`."""
    todo: list[tuple[int, str, list[str] | TestSpec, str]] = []
    for i, (conv, row_tests, lang) in enumerate(zip(conversations, tests, langs, strict=True)):
        if row_tests is None:
            continue
        code = extract_program(conv.response, lang)
        rows[i].code_chars = len(code)
        if not code.strip():
            rows[i].pass_rate, rows[i].passed, rows[i].total = 0.0, 0, _count(row_tests)
            rows[i].status = "no_code"
            continue
        todo.append((i, code, row_tests, lang))
    if not todo:
        return
    jobs = build_jobs(settings, [(code, t, lang) for _, code, t, lang in todo],
                      settings.reward_test_timeout_s, None,
                      stop_after_timeout=settings.reward_stop_after_timeout,
                      available=sandbox.languages())

    async def execute(batch: list[Job]) -> list[JobResult]:
        return await sandbox.execute(batch, deadline_s=deadline_for(settings, batch))

    results = await (cache.run(jobs, execute) if cache is not None else execute(jobs))
    for (i, _, _, _), result in zip(todo, results, strict=True):
        row = rows[i]
        row.pass_rate, row.passed, row.total = result.pass_rate, result.passed, result.total
        row.status = result.status.value


async def compute_rewards(conversations: Sequence[Conversation], labels: Sequence[Any],
                          mode: RewardMode, settings: Settings, *,
                          score: ScoreFn | None, sandbox: SandboxBackend | None,
                          cache: VerdictCache | None = None) -> RewardBatch:
    """Rewards for recovered conversations; model scoring and execution run concurrently."""
    tests = [parse_tests(label, i) if mode is not RewardMode.RM else None
             for i, label in enumerate(labels)]
    if mode is RewardMode.TESTS:
        missing = [i for i, t in enumerate(tests) if t is None]
        if missing:
            raise Unprocessable(f"mode=tests needs tests in every label; labels{missing[:10]} "
                                "are empty")
    rows = [RewardRow(format=c.format.value) for c in conversations]
    work: list[Awaitable[None]] = []
    if mode is not RewardMode.RM and any(t is not None for t in tests):
        if sandbox is None:
            raise RuntimeError("compute_rewards needs a sandbox for tests")
        langs = [languages.canonical(label_language(label)) for label in labels]
        work.append(_execute(conversations, tests, langs, rows, settings, sandbox, cache))
    if mode is not RewardMode.TESTS:
        if score is None:
            raise RuntimeError("compute_rewards needs a scorer for the model part")
        work.append(_score(conversations, rows, score))
    await asyncio.gather(*work)
    for row in rows:
        _combine(row, mode, settings)
    return RewardBatch(rows)


async def _score(conversations: Sequence[Conversation], rows: list[RewardRow],
                 score: ScoreFn) -> None:
    scores = await score([c.messages for c in conversations])
    for row, value in zip(rows, scores, strict=True):
        row.rm_score = float(value)

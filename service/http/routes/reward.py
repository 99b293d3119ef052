"""POST /get_reward: OpenRLHF's remote reward protocol (also used by the verl/TRL adapters)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from service.config import Settings
from service.errors import NotReady, TooLarge, Unprocessable
from service.execution.sandbox import SandboxBackend
from service.rewards.cache import VerdictCache
from service.rewards.modes import RewardMode, ScoreFn, compute_rewards
from service.rewards.turns import split_turns

router = APIRouter()


class GetRewardRequest(BaseModel):
    """OpenRLHF body; `mode` and `model` are our optional extensions."""

    model_config = ConfigDict(extra="ignore")  # trainers may add fields of their own

    query: list[str] = Field(min_length=1, description="full decoded prompt+response texts")
    prompts: list[str | None] | None = Field(default=None, description="prompt text per query")
    labels: list[Any] | None = Field(
        default=None, description="per query: JSON list of asserts or an AceCode-87K row")
    mode: RewardMode | None = None
    model: str | None = None


class RewardDetail(BaseModel):
    """Per-query parts that are not numbers (trainers ignore this field)."""

    format: str
    status: str | None
    rm_score: float | None
    pass_rate: float | None
    passed: int | None
    total: int | None


class GetRewardResponse(BaseModel):
    """`rewards[i]` belongs to `query[i]`; `extra_logs` values are numeric lists."""

    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]]
    details: list[RewardDetail]


def _check(body: GetRewardRequest, settings: Settings) -> None:
    n = len(body.query)
    if n > settings.max_items:
        raise TooLarge(f"{n} queries over the limit of {settings.max_items}")
    for name, values in (("prompts", body.prompts), ("labels", body.labels)):
        if values is not None and len(values) != n:
            raise Unprocessable(f"{name} has {len(values)} entries for {n} queries")
    texts: Sequence[str | None] = [*body.query, *(body.prompts or [])]
    if any(t is not None and len(t) > settings.max_text_chars for t in texts):
        raise TooLarge(f"a query or prompt over {settings.max_text_chars} chars")


def _scorer(request: Request, model: str | None) -> ScoreFn:
    registry = request.app.state.registry
    if registry is None or not registry.ready():
        raise NotReady("reward model not loaded yet", retry_after_s=5)
    scorer = registry.get(model)  # 404 for an unknown name

    async def score(items: Sequence[list[dict[str, str]]]) -> list[float]:
        outcome = await scorer.score(items)
        return [float(s) for s in outcome.scores]

    return score


def _cache(request: Request, settings: Settings) -> VerdictCache:
    """The app's verdict cache, made on first use (it belongs to the serving event loop)."""
    cache: VerdictCache | None = getattr(request.app.state, "reward_cache", None)
    if cache is None:
        cache = request.app.state.reward_cache = VerdictCache(settings.reward_cache_entries)
    return cache


@router.post("/get_reward", response_model=GetRewardResponse)
async def get_reward(body: GetRewardRequest, request: Request,
                     mode: Annotated[RewardMode | None, Query()] = None) -> GetRewardResponse:
    """Reward per query: model score, test pass rate, or hybrid (`?mode=` or body `mode`)."""
    # app.state read directly: the sync Depends helpers would each cost a threadpool hop,
    # which at thousands of single-query requests per second is a large share of the CPU
    settings: Settings = request.app.state.settings
    sandbox: SandboxBackend = request.app.state.sandbox
    _check(body, settings)
    chosen = body.mode or mode or RewardMode(settings.reward_mode)
    prompts = body.prompts or [None] * len(body.query)
    conversations = [split_turns(q, p, keep_system=settings.reward_keep_system)
                     for q, p in zip(body.query, prompts, strict=True)]
    score = None if chosen is RewardMode.TESTS else _scorer(request, body.model)
    batch = await compute_rewards(conversations, body.labels or [None] * len(body.query),
                                  chosen, settings, score=score, sandbox=sandbox,
                                  cache=_cache(request, settings))
    return GetRewardResponse(
        rewards=[r.reward for r in batch.rows], scores=[r.score for r in batch.rows],
        extra_logs=batch.extra_logs(),
        details=[RewardDetail(format=r.format, status=r.status, rm_score=r.rm_score,
                              pass_rate=r.pass_rate, passed=r.passed, total=r.total)
                 for r in batch.rows])

"""POST /rerank: best-of-N by score, or by pass rate then score when tests are given."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from sandbox_worker.protocol import JobResult
from service.execution.jobs import build_jobs, deadline_for
from service.http.deps import SandboxDep, SettingsDep
from service.http.routes.models import RegistryDep, set_timing_headers
from service.http.schemas import (
    RerankRequest,
    RerankResponse,
    RerankResult,
    Usage,
    check_rerank,
)
from service.scoring.models import ScoreOutcome
from service.scoring.ranking import rank

router = APIRouter()


@router.post("/rerank", response_model=RerankResponse)
async def rerank(body: RerankRequest, request: Request, response: Response,
                 settings: SettingsDep, registry: RegistryDep,
                 sandbox: SandboxDep) -> RerankResponse:
    """Candidates best first; with tests, every candidate also runs in the sandbox."""
    check_rerank(settings, body)
    scorer = registry.get(body.model)
    items = [[{"role": "user", "content": body.prompt},
              {"role": "assistant", "content": code}] for code in body.candidates]
    pass_rates: list[float] | None = None
    if body.tests:
        jobs = build_jobs(settings, [(code, body.tests, body.language)
                                     for code in body.candidates],
                          body.timeout_s, body.memory_mb, available=sandbox.languages())
        try:
            async with asyncio.TaskGroup() as group:  # one failing cancels the other
                score_task = group.create_task(
                    scorer.score(items, is_disconnected=request.is_disconnected))
                exec_task = group.create_task(
                    sandbox.execute(jobs, deadline_s=deadline_for(settings, jobs)))
        except ExceptionGroup as group_error:  # answer the first failure as itself (429, 504)
            raise group_error.exceptions[0] from None
        outcome: ScoreOutcome = score_task.result()
        results: list[JobResult] = exec_task.result()
        pass_rates = [r.pass_rate for r in results]
    else:
        outcome = await scorer.score(items, is_disconnected=request.is_disconnected)
    set_timing_headers(response, outcome)
    ranked = rank(outcome.scores, pass_rates, body.top_k)
    return RerankResponse(
        model=scorer.info.name,
        results=[RerankResult(index=r.index, score=r.score, pass_rate=r.pass_rate)
                 for r in ranked],
        usage=Usage(tokens=outcome.tokens, truncated=outcome.truncated))

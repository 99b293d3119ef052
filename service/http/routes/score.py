"""POST /score: rewards of (prompt, response) pairs or chats, batched across requests."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.http.deps import SettingsDep
from service.http.routes.models import RegistryDep, set_timing_headers
from service.http.schemas import ScoreRequest, ScoreResponse, Usage, check_score

router = APIRouter()


@router.post("/score", response_model=ScoreResponse)
async def score(body: ScoreRequest, request: Request, response: Response,
                settings: SettingsDep, registry: RegistryDep) -> ScoreResponse:
    """`scores[i]` belongs to `items[i]`; stage timings come back as x-*-time headers (ms)."""
    check_score(settings, body)
    scorer = registry.get(body.model)
    outcome = await scorer.score([item.as_messages() for item in body.items],
                                 is_disconnected=request.is_disconnected)
    set_timing_headers(response, outcome)
    return ScoreResponse(model=scorer.info.name, scores=outcome.scores,
                         usage=Usage(tokens=outcome.tokens, truncated=outcome.truncated))

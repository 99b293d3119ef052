"""GET /models, and the registry dependency the scoring routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from service.errors import NotReady
from service.http.schemas import ModelCard, ModelsResponse
from service.scoring.models import ModelRegistry, ScoreOutcome

router = APIRouter()


async def _registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry | None = getattr(request.app.state, "registry", None)
    if registry is None:
        raise NotReady("no model registry yet")
    return registry


RegistryDep = Annotated[ModelRegistry, Depends(_registry)]

_HEADERS = {"total": "x-total-time", "queue": "x-queue-time", "inference": "x-inference-time",
            "tokenize": "x-tokenization-time"}


def set_timing_headers(response: Response, outcome: ScoreOutcome) -> None:
    """Stage timings as TEI sends them: whole milliseconds per header."""
    for stage, header in _HEADERS.items():
        response.headers[header] = str(round(outcome.timings.get(stage, 0.0) * 1000))


@router.get("/models", response_model=ModelsResponse)
async def list_models(registry: RegistryDep) -> ModelsResponse:
    """The loaded models with their backend, dtype, device, max length and size."""
    default = registry.default if registry.ready() else None
    return ModelsResponse(default=default, models=[
        ModelCard(name=i.name, backend=i.backend, dtype=i.dtype, device=i.device,
                  max_length=i.max_length, parameters=i.parameters,
                  default=i.name == registry.default, chat_template=i.chat_template,
                  reward=i.reward)
        for i in registry.infos()])

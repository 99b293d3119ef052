"""Operations routes: /healthz, /readyz, /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.http.deps import MetricsDep, SandboxDep

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready"}})
async def readyz(request: Request, sandbox: SandboxDep) -> JSONResponse:
    """Ready when models are loaded, the sandbox answers and the server is not draining."""
    state = request.app.state
    sandbox_ok = await sandbox.ready()
    registry = getattr(state, "registry", None)
    # loaded and warmed up: the first request after 200 should not pay for a first batch
    models_ok = (registry is not None and registry.ready()
                 and not getattr(state, "models_loading", False))
    draining = bool(getattr(state, "draining", False))
    ok = sandbox_ok and models_ok and not draining
    body = {
        "status": "ready" if ok else "not ready",
        "models": models_ok,
        "sandbox": {"ready": sandbox_ok, **sandbox.describe()},
        "draining": draining,
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

"""create_app: the one composition root of the service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sandbox_worker.startup import start_executor
from service.config import Settings
from service.errors import ServiceError
from service.execution.redis_sandbox import RedisSandbox
from service.execution.sandbox import LocalSandbox, SandboxBackend
from service.http.access import AccessLogMiddleware
from service.http.auth import check_api_key
from service.http.lifecycle import DrainMiddleware, InFlight, warm_up
from service.http.middleware import RequestContextMiddleware
from service.http.routes import execute, ops, rerank, score
from service.http.routes import languages as languages_route
from service.http.routes import models as models_route
from service.http.routes import reward as reward_route
from service.http.schemas import ErrorBody
from service.metrics import Metrics
from service.scoring.models import ModelRegistry, build_registry

log = logging.getLogger("codereward.app")

# Answers every API route can give (auth, body limit, not ready or draining): in the OpenAPI.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "API keys configured; key missing or wrong"},
    413: {"model": ErrorBody, "description": "body over the configured size limit"},
    503: {"model": ErrorBody, "description": "not ready, or shutting down (see Retry-After)"},
}

# Routers behind API-key auth. Each feature adds its router here.
API_ROUTERS = [execute.router, reward_route.router, score.router, rerank.router,
               models_route.router, languages_route.router]


def build_sandbox(settings: Settings, metrics: Metrics) -> SandboxBackend:
    """The sandbox backend the settings ask for (in-process pool by default)."""
    if settings.redis_url:  # programs run on `python -m sandbox_worker` processes
        log.info("sandbox ready", extra={"backend": "redis", "stream": settings.queue_prefix})
        return RedisSandbox.from_settings(settings, metrics)
    executor = start_executor(settings)  # refuses unisolated runs in production
    log.info("sandbox ready", extra={"backend": "local", "isolation": executor.isolation,
                                      "workers": settings.sandbox_workers})
    return LocalSandbox(executor, workers=settings.sandbox_workers,
                        max_pending=settings.max_sandbox_queue, metrics=metrics)


def _install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        metrics.errors.labels(type(exc).__name__).inc()
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.errors.labels("ValidationError").inc()
        # keep FastAPI's detail shape, but never echo huge inputs back
        detail = [{k: v for k, v in err.items() if k in ("type", "loc", "msg")}
                  for err in exc.errors()[:50]]
        return JSONResponse({"detail": detail}, status_code=422)


async def _load_models(app: FastAPI, registry: ModelRegistry, *, warmup: bool) -> None:
    try:
        await registry.start()
    except Exception:
        log.exception("model loading failed; /readyz stays 503")
        return
    if warmup:  # the first real request should not pay for the first batch
        await warm_up(registry)
    app.state.models_loading = False  # only now may /readyz say ready


def create_app(settings: Settings, *, sandbox: SandboxBackend | None = None,
               registry: object | None = None, metrics: Metrics | None = None) -> FastAPI:
    """Build the app. Pass `sandbox`/`registry` to inject (tests); else built at start-up."""
    metrics = metrics or Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.draining = False
        owned_sandbox = sandbox is None
        if owned_sandbox:
            app.state.sandbox = build_sandbox(settings, metrics)
        if registry is None:  # fails fast here when no model is configured or built
            app.state.registry = build_registry(settings, metrics)
        models = app.state.registry
        # load in the background: /healthz answers and /readyz is 503 until models are ready
        load_task = None
        if not models.ready() and hasattr(models, "start"):  # fakes may be plain objects
            app.state.models_loading = True
            load_task = asyncio.create_task(_load_models(app, models, warmup=settings.warmup))
        try:
            yield
        finally:
            app.state.draining = True
            if load_task is not None:
                load_task.cancel()
                await asyncio.gather(load_task, return_exceptions=True)
            if load_task is not None or registry is None:
                await models.aclose()
            if owned_sandbox:
                await app.state.sandbox.aclose()

    app = FastAPI(title="codereward", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.api_keys = settings.api_key_set()
    app.state.sandbox = sandbox
    app.state.registry = registry
    app.state.models_loading = False
    app.state.draining = False
    _install_error_handlers(app, metrics)
    auth = [Depends(check_api_key)]
    for router in API_ROUTERS:
        app.include_router(router, dependencies=auth, responses=COMMON_ERRORS)
    app.include_router(ops.router)  # /healthz, /readyz, /metrics: no auth (API.md)
    app.state.inflight = InFlight()
    # added before RequestContextMiddleware, so inside it: drain 503s get ids and metrics
    app.add_middleware(DrainMiddleware, inflight=app.state.inflight)
    if settings.access_log:
        app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestContextMiddleware, metrics=metrics,
                       max_body_bytes=settings.max_body_bytes)
    return app

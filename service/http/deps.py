"""FastAPI dependencies: typed access to what create_app put on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.execution.sandbox import SandboxBackend
from service.metrics import Metrics


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _sandbox(request: Request) -> SandboxBackend:
    sandbox: SandboxBackend = request.app.state.sandbox
    return sandbox


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(_settings)]
SandboxDep = Annotated[SandboxBackend, Depends(_sandbox)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]

"""Start an executor from settings, with the production isolation rule (service and workers)."""

from __future__ import annotations

from typing import Protocol

from sandbox_worker.executor import Executor


class UnisolatedRefused(RuntimeError):
    """Production mode without namespace isolation, and unisolated runs were not allowed."""


class SandboxSettings(Protocol):
    """The settings both the service and the worker carry under the same names."""

    @property
    def sandbox_workers(self) -> int: ...
    @property
    def sandbox_isolation(self) -> str: ...
    @property
    def sandbox_nproc(self) -> int: ...
    @property
    def sandbox_fsize_mb(self) -> int: ...
    @property
    def sandbox_nofile(self) -> int: ...
    @property
    def production(self) -> bool: ...
    @property
    def allow_unisolated(self) -> bool: ...


def start_executor(settings: SandboxSettings) -> Executor:
    """A started executor; refuses `none` isolation in production unless explicitly allowed."""
    executor = Executor(workers=settings.sandbox_workers, isolation=settings.sandbox_isolation,
                        nproc=settings.sandbox_nproc, fsize_mb=settings.sandbox_fsize_mb,
                        nofile=settings.sandbox_nofile)
    executor.start()
    if settings.production and executor.isolation == "none" and not settings.allow_unisolated:
        executor.close()
        raise UnisolatedRefused(
            "production mode needs namespace isolation, which this host does not allow; "
            "set CODEREWARD_ALLOW_UNISOLATED=true to run programs unisolated anyway")
    return executor

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
    def sandbox_memory_bound(self) -> str: ...
    @property
    def sandbox_cgroup(self) -> str | None: ...
    @property
    def sandbox_cpus(self) -> float: ...
    @property
    def production(self) -> bool: ...
    @property
    def allow_unbounded_memory(self) -> bool: ...
    @property
    def allow_unisolated(self) -> bool: ...


def start_executor(settings: SandboxSettings) -> Executor:
    """A started executor; in production refuses `none` isolation, and no aggregate memory
    bound, unless explicitly allowed."""
    executor = Executor(workers=settings.sandbox_workers, isolation=settings.sandbox_isolation,
                        nproc=settings.sandbox_nproc, fsize_mb=settings.sandbox_fsize_mb,
                        nofile=settings.sandbox_nofile,
                        memory_bound=settings.sandbox_memory_bound,
                        cgroup_path=settings.sandbox_cgroup, cpus=settings.sandbox_cpus)
    executor.start()
    if settings.production and executor.isolation == "none" and not settings.allow_unisolated:
        executor.close()
        raise UnisolatedRefused(
            "production mode needs namespace isolation, which this host does not allow; "
            "set CODEREWARD_ALLOW_UNISOLATED=true to run programs unisolated anyway")
    if settings.production and executor.memory_bound == "rlimit" and \
            not settings.allow_unbounded_memory:
        executor.close()
        raise UnisolatedRefused(
            "production mode needs an aggregate memory bound per program (a cgroup or the "
            "watcher), and CODEREWARD_SANDBOX_MEMORY_BOUND=none turns both off; set "
            "CODEREWARD_ALLOW_UNBOUNDED_MEMORY=true to run without one anyway")
    return executor

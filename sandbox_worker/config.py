"""Worker settings (env `CODEREWARD_*` or `.env`); names shared with the service mean the same."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(BaseSettings):
    """Configuration of one `python -m sandbox_worker` process."""

    model_config = SettingsConfigDict(
        env_prefix="CODEREWARD_", env_file=".env", extra="ignore", frozen=True
    )

    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_prefix: str = "codereward"  # key prefix; must match the service's
    sandbox_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)  # jobs at once
    # executor isolation and per-program limits: same names as the service's settings
    sandbox_isolation: Literal["auto", "bwrap", "namespaces", "none"] = "auto"
    sandbox_nproc: int = Field(default=256, ge=8)  # RLIMIT_NPROC of the sandbox uid
    sandbox_fsize_mb: int = Field(default=64, ge=1)  # largest file and /tmp size per program
    sandbox_nofile: int = Field(default=256, ge=16)  # open files per program
    # a program's memory as a whole (all its processes): auto = a cgroup when the host allows
    # one, else the watcher; cgroup = required; watch; none = RLIMIT_AS per process only
    sandbox_memory_bound: Literal["auto", "cgroup", "watch", "none"] = "auto"
    sandbox_cgroup: str | None = None  # a delegated cgroup2 dir for the per-program groups
    # CPU bandwidth of a program as a whole (all its processes), with the cgroup; 0: none
    sandbox_cpus: float = Field(default=1.0, ge=0)
    production: bool = False  # refuse to run programs unisolated unless allow_unisolated
    allow_unisolated: bool = False
    allow_unbounded_memory: bool = False  # production without an aggregate memory bound

    worker_name: str = Field(default_factory=_default_name)  # consumer name in the group
    worker_metrics_port: int = Field(default=9100, ge=0, le=65535)  # 0: no metrics server
    worker_heartbeat_s: float = Field(default=5.0, gt=0)  # heartbeat and re-claim period
    read_block_s: float = Field(default=1.0, gt=0)  # XREADGROUP block time (drain latency)
    claim_idle_s: float = Field(default=30.0, gt=0)  # pending this long (owner dead): take over
    max_attempts: int = Field(default=3, ge=1)  # deliveries before a job is answered `killed`
    cache_ttl_s: int = Field(default=86400, ge=1)  # how long a result stays cached
    cache_max_entries: int = Field(default=200_000, ge=1)  # cached results kept (oldest go)
    store_retry_s: float = Field(default=60.0, ge=0)  # keep retrying a result write this long
    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _claims_outlast_heartbeats(self) -> WorkerSettings:
        # a live worker re-claims its jobs every heartbeat; a shorter idle timeout would let
        # other workers steal (and re-run) jobs that are still running
        if self.claim_idle_s < 2 * self.worker_heartbeat_s:
            raise ValueError("claim_idle_s must be at least twice worker_heartbeat_s")
        return self

    def masked(self) -> dict[str, object]:
        """Settings as a dict with the Redis password masked, for the start-up log."""
        out = self.model_dump()
        if "@" in self.redis_url:
            scheme, _, rest = self.redis_url.partition("://")
            out["redis_url"] = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return out

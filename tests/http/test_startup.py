"""Production refuses to run programs unisolated unless explicitly told to (service and worker)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sandbox_worker import cgroups
from sandbox_worker.startup import UnisolatedRefused, start_executor
from service.config import Settings
from service.http.app import build_sandbox
from service.metrics import Metrics


def test_production_refuses_unisolated_service() -> None:
    settings = Settings(_env_file=None, production=True, sandbox_isolation="none",
                        sandbox_workers=1)
    with pytest.raises(UnisolatedRefused, match="ALLOW_UNISOLATED"):
        build_sandbox(settings, Metrics())


async def test_production_runs_unisolated_when_allowed() -> None:
    settings = Settings(_env_file=None, production=True, sandbox_isolation="none",
                        allow_unisolated=True, sandbox_workers=1)
    sandbox = build_sandbox(settings, Metrics())
    try:
        assert sandbox.describe()["isolation"] == "none"
    finally:
        await sandbox.aclose()


def test_development_mode_accepts_unisolated() -> None:
    executor = start_executor(Settings(_env_file=None, sandbox_isolation="none",
                                       sandbox_workers=1))
    try:
        assert executor.isolation == "none"
    finally:
        executor.close()


def test_production_refuses_unisolated_worker() -> None:
    env = {**os.environ, "CODEREWARD_PRODUCTION": "true", "CODEREWARD_SANDBOX_ISOLATION": "none",
           "CODEREWARD_SANDBOX_WORKERS": "1", "CODEREWARD_WORKER_METRICS_PORT": "0",
           "CODEREWARD_REDIS_URL": "redis://127.0.0.1:9/0"}
    proc = subprocess.run([sys.executable, "-m", "sandbox_worker"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "ALLOW_UNISOLATED" in proc.stderr


def test_production_refuses_no_aggregate_memory_bound() -> None:
    settings = Settings(_env_file=None, production=True, sandbox_memory_bound="none",
                        sandbox_workers=1)
    with pytest.raises(UnisolatedRefused, match="ALLOW_UNBOUNDED_MEMORY"):
        build_sandbox(settings, Metrics())


async def test_memory_bound_is_reported_and_can_be_allowed_off() -> None:
    settings = Settings(_env_file=None, production=True, sandbox_memory_bound="none",
                        allow_unbounded_memory=True, sandbox_workers=1)
    sandbox = build_sandbox(settings, Metrics())
    try:
        assert sandbox.describe()["memory_bound"] == "rlimit"
        assert sandbox.describe()["cpu_bound"] == "rlimit"  # the CPU bound rides the cgroup
    finally:
        await sandbox.aclose()
    sandbox = build_sandbox(Settings(_env_file=None, sandbox_workers=1), Metrics())
    try:
        described = sandbox.describe()
        assert described["memory_bound"] in ("cgroup-v1", "cgroup-v2", "watch")
        assert described["cpu_bound"] == ("1 cpu" if described["memory_bound"] != "watch"
                                          and cgroups_have_cpu() else "rlimit")
    finally:
        await sandbox.aclose()


def cgroups_have_cpu() -> bool:
    groups = cgroups.detect(cpus=1.0)
    if groups is None:
        return False
    try:
        return groups.cpus > 0
    finally:
        groups.close()

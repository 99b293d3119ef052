"""Execution: sandbox backends (in-process pool, Redis queue) and request-to-job mapping.

The public surface other layers use (the reward layer imports only this module):
`SandboxBackend` (the backend protocol), `LocalSandbox`, and `build_jobs` / `deadline_for`
(turn a request's programs and tests into jobs within the server's limits). `RedisSandbox`
lives in `service.execution.redis_sandbox` and is built only by the app factory.
"""

from __future__ import annotations

from service.execution.jobs import build_jobs, deadline_for
from service.execution.sandbox import LocalSandbox, SandboxBackend

__all__ = ["LocalSandbox", "SandboxBackend", "build_jobs", "deadline_for"]

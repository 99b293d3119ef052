"""POST /execute-tests."""

from __future__ import annotations

from fastapi import APIRouter

from service.execution.jobs import build_jobs, deadline_for
from service.http.deps import SandboxDep, SettingsDep
from service.http.schemas import ExecuteRequest, ExecuteResponse, SubmissionResult

router = APIRouter()


@router.post("/execute-tests", response_model=ExecuteResponse)
async def execute_tests(body: ExecuteRequest, settings: SettingsDep,
                        sandbox: SandboxDep) -> ExecuteResponse:
    """Run programs against their tests (asserts, stdio or call); pass rates as in AceCoder."""
    jobs = build_jobs(settings, [(s.code, s.tests, s.language) for s in body.submissions],
                      body.timeout_s, body.memory_mb, available=sandbox.languages(),
                      program_timeout_s=body.program_timeout_s)
    results = await sandbox.execute(jobs, deadline_s=deadline_for(settings, jobs))
    return ExecuteResponse(results=[
        SubmissionResult(id=s.id, status=r.status, pass_rate=r.pass_rate, passed=r.passed,
                         total=r.total, tests=r.tests)
        for s, r in zip(body.submissions, results, strict=True)
    ])

"""Request and response models of the wire contract (API.md) shared by several routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sandbox_worker.protocol import RunStatus, TestVerdict


class Submission(BaseModel):
    """One program and its asserts."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=256)
    code: str
    tests: list[str]


class ExecuteRequest(BaseModel):
    """POST /execute-tests body."""

    model_config = ConfigDict(extra="forbid")

    submissions: list[Submission] = Field(min_length=1)
    timeout_s: float | None = Field(default=None, gt=0, description="limit per test, seconds")
    memory_mb: int | None = Field(default=None, gt=0, description="address space, MiB")


class SubmissionResult(BaseModel):
    """One submission's outcome."""

    id: str | None = None
    status: RunStatus
    pass_rate: float
    passed: int
    total: int
    tests: list[TestVerdict]


class ExecuteResponse(BaseModel):
    """POST /execute-tests response: one result per submission, in order."""

    results: list[SubmissionResult]


class ErrorBody(BaseModel):
    """Every non-422 error body."""

    detail: str
    request_id: str | None = None

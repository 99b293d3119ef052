"""Wire models shared by the executor, the Redis queue and the service (versioned)."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Bump when a change to the executor could change a verdict: it is part of every job id,
# so cached results from an older executor are never reused.
EXECUTOR_VERSION = "2"  # 2: trusted evaluation of the whole assert (issue 15)
PROTOCOL_VERSION = 1


class TestStatus(StrEnum):
    """Verdict of one assert."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"
    KILLED = "killed"
    NOT_RUN = "not_run"


class RunStatus(StrEnum):
    """Verdict of one submission (program + its tests)."""

    OK = "ok"
    SYNTAX_ERROR = "syntax_error"
    LOAD_ERROR = "load_error"
    TIMEOUT = "timeout"
    KILLED = "killed"
    COMPILE_ERROR = "compile_error"  # a compiled language's compiler rejected the program


class StdioCase(BaseModel):
    """One stdin/stdout case: the program reads `input` and must print `output`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: str
    output: str


class StdioTests(BaseModel):
    """`stdio` kind (CodeContests, TACO, APPS, LiveCodeBench stdin): one verdict per case."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["stdio"]
    cases: list[StdioCase]
    # tokens: whitespace-normalized token comparison (CodeContests/LiveCodeBench);
    # lines: trailing whitespace and blank trailing lines ignored; exact: byte-exact;
    # float: tokens, numeric tokens equal within float_tol (absolute or relative)
    compare: Literal["tokens", "lines", "exact", "float"] = "tokens"
    float_tol: float = Field(default=1e-6, ge=0)


class CallTests(BaseModel):
    """`call` kind (APPS/TACO `fn_name`, LiveCodeBench functional, `class Solution`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["call"]
    fn_name: str
    inputs: list[list[Any]]  # one argument list per case
    outputs: list[Any]  # one expected value per case


class ModuleTests(BaseModel):
    """`unittest` (TestCase methods) or `pytest` (`def test_*`) test module source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["unittest", "pytest"]
    module: str


TestSpec = Annotated[StdioTests | CallTests | ModuleTests, Field(discriminator="kind")]


def count_module_tests(kind: str, source: str) -> int:
    """Verdicts a test module yields: its test functions (pytest, one per parameter set) or
    TestCase test methods (unittest); 0 when it does not parse."""
    from sandbox_worker.kinds import modules  # light (ast only); kept out of the child

    try:
        return len(modules.convert(kind, source))
    except (SyntaxError, ValueError, RecursionError, MemoryError, TypeError):
        return 0


class Job(BaseModel):
    """One program and its tests (asserts, or one of the TestSpec kinds), with limits."""

    model_config = ConfigDict(frozen=True)

    code: str
    # a list of assert strings (AceCode's format, the default kind `asserts`) or a TestSpec
    tests: list[str] | TestSpec
    language: str = "python"
    # optional limit on the whole program's run (all tests together), seconds
    program_timeout_s: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(gt=0, description="limit per test, seconds")
    memory_mb: int = Field(gt=0, description="address-space limit per program, MiB")
    # once one test times out, the later tests are not run (`not_run`, counted as failed):
    # a looping program then holds a slot for one limit, not one per test. Opt-in, because
    # AceCoder's pass rate runs every assert (a later one may still pass)
    stop_after_timeout: bool = False

    @property
    def kind(self) -> str:
        """`asserts`, or the TestSpec's kind."""
        return "asserts" if isinstance(self.tests, list) else self.tests.kind

    def n_tests(self) -> int:
        """How many verdicts this job yields."""
        t = self.tests
        if isinstance(t, list):
            return len(t)
        if isinstance(t, StdioTests):
            return len(t.cases)
        if isinstance(t, CallTests):
            return len(t.inputs)
        return count_module_tests(t.kind, t.module)

    def job_id(self) -> str:
        """Content hash of (code, tests, limits, policy, executor version): the cache key."""
        tests = self.tests if isinstance(self.tests, list) else self.tests.model_dump()
        key: list[object] = [EXECUTOR_VERSION, self.code, tests, round(self.timeout_s, 6),
                             self.memory_mb]
        if self.stop_after_timeout:  # appended only when set: default ids stay as they were
            key.append("stop_after_timeout")
        # appended only when not the defaults: ids of python assert jobs stay as they were
        if self.language != "python":
            key.append(["language", self.language])
        if self.program_timeout_s is not None:
            key.append(["program_timeout_s", round(self.program_timeout_s, 6)])
        blob = json.dumps(key, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class TestVerdict(BaseModel):
    """Outcome of one assert."""

    status: TestStatus
    duration_ms: float = 0.0
    error: str | None = None


class JobResult(BaseModel):
    """Outcome of one job. `pass_rate` = passed / total; a test that did not run is a fail."""

    status: RunStatus
    pass_rate: float
    passed: int
    total: int
    tests: list[TestVerdict]
    error: str | None = None

    @classmethod
    def from_tests(
        cls, status: RunStatus, tests: list[TestVerdict], error: str | None = None
    ) -> JobResult:
        """Build a result, deriving the counts and pass rate from the per-test verdicts."""
        total = len(tests)
        passed = sum(1 for t in tests if t.status is TestStatus.PASSED)
        if status in (RunStatus.SYNTAX_ERROR, RunStatus.LOAD_ERROR):
            passed = 0
        rate = passed / total if total else 0.0
        return cls(status=status, pass_rate=rate, passed=passed, total=total, tests=tests,
                   error=error)

    @classmethod
    def unrun(cls, status: RunStatus, n_tests: int, error: str | None = None) -> JobResult:
        """A result where no test ran (syntax error, load error, killed before tests)."""
        verdicts = [TestVerdict(status=TestStatus.NOT_RUN) for _ in range(n_tests)]
        return cls.from_tests(status, verdicts, error)


class JobEnvelope(BaseModel):
    """A job as it travels on the Redis stream (versioned)."""

    v: int = PROTOCOL_VERSION
    job_id: str
    job: Job
    executor_version: str = EXECUTOR_VERSION
    enqueued_at: float = Field(description="unix seconds when the service queued it")


class ResultEnvelope(BaseModel):
    """A result as cached in Redis and pushed to waiting services (versioned)."""

    v: int = PROTOCOL_VERSION
    job_id: str
    result: JobResult
    executor_version: str = EXECUTOR_VERSION
    worker: str = ""
    run_s: float = Field(default=0.0, description="seconds the executor spent on it")

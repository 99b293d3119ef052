"""Wire models: the test kinds of a Job, their verdict counts and cache keys."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import TypeAdapter, ValidationError

from sandbox_worker.protocol import (
    EXECUTOR_VERSION,
    CallTests,
    Job,
    ModuleTests,
    StdioTests,
    TestSpec,
)


def _job(tests: object, **kw: object) -> Job:
    return Job.model_validate({"code": "x = 1", "tests": tests, "timeout_s": 1.0,
                               "memory_mb": 256, **kw})


def test_assert_job_id_is_unchanged_by_the_new_fields() -> None:
    job = _job(["assert x == 1"])
    blob = json.dumps([EXECUTOR_VERSION, "x = 1", ["assert x == 1"], 1.0, 256],
                      ensure_ascii=False, separators=(",", ":"))
    assert job.job_id() == hashlib.sha256(blob.encode()).hexdigest()
    assert job.kind == "asserts" and job.language == "python" and job.n_tests() == 1


def test_kinds_parse_by_discriminator_and_count_verdicts() -> None:
    stdio = _job({"kind": "stdio", "cases": [{"input": "1\n", "output": "2\n"}] * 3})
    assert isinstance(stdio.tests, StdioTests) and stdio.n_tests() == 3
    assert stdio.tests.compare == "tokens"
    call = _job({"kind": "call", "fn_name": "f", "inputs": [[1], [2]], "outputs": [2, 3]})
    assert isinstance(call.tests, CallTests) and call.n_tests() == 2 and call.kind == "call"
    ut = _job({"kind": "unittest", "module": (
        "import unittest\nclass T(unittest.TestCase):\n"
        "    def test_a(self): pass\n    def test_b(self): pass\n    def helper(self): pass\n")})
    assert isinstance(ut.tests, ModuleTests) and ut.n_tests() == 2
    pt = _job({"kind": "pytest", "module": "def test_a():\n    pass\ndef util():\n    pass\n"})
    assert pt.n_tests() == 1
    assert _job({"kind": "pytest", "module": "def test_a(:"}).n_tests() == 0


def test_unknown_kind_and_extra_fields_are_rejected() -> None:
    adapter: TypeAdapter[object] = TypeAdapter(TestSpec)
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "nope", "cases": []})
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "stdio", "cases": [], "bogus": 1})


def test_language_and_program_budget_change_the_cache_key() -> None:
    base = _job({"kind": "stdio", "cases": [{"input": "", "output": "1"}]})
    ids = {base.job_id(), _job(base.tests.model_dump(), language="cpp").job_id(),
           _job(base.tests.model_dump(), program_timeout_s=5.0).job_id(),
           _job({"kind": "stdio", "cases": [{"input": "", "output": "1"}],
                 "compare": "exact"}).job_id()}
    assert len(ids) == 4

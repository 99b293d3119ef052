"""Published test layouts (fixtures written for this project in each dataset's exact layout)
read into test kinds, then run in the real sandbox with the row's reference solution."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from sandbox_worker import datasets
from sandbox_worker.executor import Executor
from sandbox_worker.protocol import CallTests, Job, ModuleTests, StdioTests

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = {"apps_stdio": ("stdio", 2), "taco_call": ("call", 2), "code_contests": ("stdio", 4),
            "lcb_stdin": ("stdio", 2), "lcb_functional": ("call", 2), "verl": ("stdio", 1),
            "kodcode": ("pytest", 2)}


def _row(name: str) -> dict[str, object]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layout_is_read_and_its_solution_passes(executor: Executor, name: str) -> None:
    row = _row(name)
    spec = datasets.read_tests(row)
    kind, n = EXPECTED[name]
    assert spec is not None and spec.kind == kind
    job = Job(code=str(row["solution"]), tests=spec, timeout_s=10, memory_mb=512)
    assert job.n_tests() == n
    result = executor.run(job)
    assert result.passed == n, [t.error for t in result.tests]
    broken = executor.run(job.model_copy(update={"code": "print(-1)\ndef biggest(x): return 0\ndef add(a, b): return -7\n"
                                                          "class Solution:\n"
                                                          "    def twoSum(self, *a): return []"}))
    assert broken.passed == 0


def test_taco_outputs_wrapped_and_args_listed() -> None:
    spec = datasets.read_tests(_row("taco_call"))
    assert isinstance(spec, CallTests)
    assert spec.fn_name == "biggest" and spec.inputs == [[[1, 5, 2]], [[-1, -7]]]


def test_code_contests_splits_can_be_chosen() -> None:
    spec = datasets.read_tests(_row("code_contests"), contests=("public_tests",))
    assert isinstance(spec, StdioTests) and len(spec.cases) == 1


def test_test_modules_are_recognised() -> None:
    spec = datasets.read_tests(_row("kodcode"))
    assert isinstance(spec, ModuleTests) and spec.kind == "pytest"
    unit = datasets.read_tests({"test": "import unittest\nclass T(unittest.TestCase):\n"
                                        "    def test_a(self): pass\n"})
    assert isinstance(unit, ModuleTests) and unit.kind == "unittest"


def test_pickled_code_in_lcb_private_cases_is_refused() -> None:
    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("ran",))
    blob = base64.b64encode(zlib.compress(pickle.dumps(Boom()))).decode()
    with pytest.raises(datasets.LayoutError, match="refusing"):
        datasets.read_tests({"public_test_cases": "[]", "private_test_cases": blob})


@pytest.mark.parametrize("value", [
    {"input_output": {"inputs": ["1"], "outputs": []}},
    {"public_tests": {"input": ["1"], "output": []}},
    {"public_test_cases": json.dumps([{"input": "1", "output": "1", "testtype": "functional"}])},
])
def test_malformed_layouts_raise(value: dict[str, object]) -> None:
    with pytest.raises(datasets.LayoutError):
        datasets.read_tests(value)


def test_unknown_values_are_none() -> None:
    assert datasets.read_tests({"foo": 1}) is None
    assert datasets.read_tests("not json") is None
    assert datasets.read_tests([1, 2]) is None

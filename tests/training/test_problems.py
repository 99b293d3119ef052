"""Loaders: bundled set, AceCode-87K layout (JSONL and Parquet), HumanEval, MBPP."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sandbox_worker.executor import Executor
from sandbox_worker.protocol import Job
from tests.training.conftest import FIXTURES
from training.common.records import read_jsonl
from training.problems.loaders import (
    inference_candidates,
    load_acecode,
    load_bundled,
    load_humaneval,
    load_mbpp,
    main,
)


def test_bundled_problems_are_well_formed() -> None:
    problems = load_bundled()
    assert problems, "training/data/problems_*.jsonl must ship problems"
    assert len({p.id for p in problems}) == len(problems)
    for p in problems:
        assert p.question and p.reference and p.entry_point
        assert len(p.tests) >= 5
        assert not p.id.startswith("HumanEval")


def test_acecode_jsonl_and_parquet_agree(tmp_path: Path) -> None:
    src = FIXTURES / "acecode_sample.jsonl"
    rows = [json.loads(line) for line in src.read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "ace.parquet")
    a = load_acecode(src)
    b = load_acecode(tmp_path / "ace.parquet")
    assert [p.to_row() for p in a] == [p.to_row() for p in b]
    assert a[0].id == "evol_101" and a[0].entry_point == "add_one"
    assert a[0].tests == rows[0]["test_cases"]
    assert "add_one" in a[0].reference  # a pass_rate 1.0 inference becomes the reference
    cands = list(inference_candidates(a))
    assert len(cands) == sum(len(r["inferences"]) for r in rows)
    assert cands[1]["stored_pass_rate"] == 0.33


def test_problems_cli_writes_candidates(tmp_path: Path) -> None:
    main(["acecode", str(FIXTURES / "acecode_sample.jsonl"), "--out", str(tmp_path / "p.jsonl"),
          "--candidates-out", str(tmp_path / "c.jsonl")])
    assert len(list(read_jsonl(tmp_path / "p.jsonl"))) == 3
    assert len(list(read_jsonl(tmp_path / "c.jsonl"))) == 10


def test_humaneval_canonical_passes_converted_tests(executor: Executor) -> None:
    problems = load_humaneval(limit=6)
    assert len(problems) == 6
    for p in problems:
        r = executor.run(Job(code=p.reference, tests=p.tests, timeout_s=4, memory_mb=1024))
        assert r.pass_rate == 1.0, (p.id, r)
        assert len(p.tests) >= 1


def test_mbpp_style(tmp_path: Path, executor: Executor) -> None:
    row = {"task_id": 7, "text": "Write a function to add two numbers.",
           "code": "def add(a, b):\n    return a + b",
           "test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"],
           "test_imports": []}
    (tmp_path / "mbpp.jsonl").write_text(json.dumps(row) + "\n")
    (p,) = load_mbpp(tmp_path / "mbpp.jsonl")
    assert p.id == "mbpp/7" and p.entry_point == "add"
    assert "assert add(1, 2) == 3" in p.question
    r = executor.run(Job(code=p.reference, tests=p.tests, timeout_s=4, memory_mb=1024))
    assert r.pass_rate == 1.0

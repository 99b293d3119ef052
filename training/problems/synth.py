"""Test synthesis (AceCoder): rewrite each question and write ~20 asserts with an LLM,
then keep only the tests a reference (or strong-model) solution passes.

Filter rules, as in AceCoder: a question whose reference passes ≤ `min_passed` (3) tests is
dropped; a question left with fewer than `min_tests` (5) tests is dropped.
`python -m training.problems.synth --problems seeds.jsonl --out synth.jsonl \
--base_url=... --model=...`
Resumable: ids already in `out` (or in `out`.dropped.jsonl) are skipped; LLM answers are
cached on disk.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sandbox_worker.extract import extract_code
from sandbox_worker.protocol import Job, TestStatus
from training.common.cli import parse_overrides
from training.common.llm import ChatClient, LLMSettings
from training.common.records import Appender, done_keys
from training.problems.loaders import Problem, called_name, load_problems
from training.problems.passrate import ExecSettings, make_executor, run_jobs

REWRITE_PROMPT = """You are given a coding question. Rewrite it as a self-contained \
LeetCode-style question that is solved by ONE Python function, needs no external resources \
(files, network, packages outside the standard library), and states the function name and \
signature. Then write {n_tests} independent test cases, each ONE Python `assert` statement \
that calls the function with constant arguments and compares with a constant expected value.
Answer with JSON only: {{"question": "...", "tests": ["assert ...", ...]}}

Question:
{question}"""

SOLVE_PROMPT = """Solve this question in Python. Answer with one ```python code block.

{question}"""


@dataclass
class SynthConfig(LLMSettings):
    """LLM endpoint + synthesis and filter settings (all are `--key=value` flags)."""

    problems: str = "seeds.jsonl"
    out: str = "synth.jsonl"
    n_tests: int = 20
    temperature: float = 0.7  # rewrite sampling temperature (AceCoder: 0.7)
    max_tokens: int = 2048
    solver_model: str = ""  # strong model for the reference when a seed has none ("" = model)
    min_passed: int = 3  # drop when the reference passes ≤ this many tests
    min_tests: int = 5  # drop when fewer tests are left
    workers: int = 2  # sandbox programs in parallel
    timeout_s: float = 4.0
    memory_mb: int = 1024


def parse_rewrite(text: str) -> tuple[str, list[str]]:
    """(question, tests) from the model's JSON answer (fenced or bare); raises ValueError."""
    m = re.search(r"\{.*\}", text, re.DOTALL)
    if m is None:
        raise ValueError("no JSON object in the answer")
    data = json.loads(m.group(0))
    q = str(data.get("question", "")).strip()
    tests = [str(t).strip() for t in data.get("tests", []) if str(t).strip().startswith("assert")]
    if not q or not tests:
        raise ValueError("JSON answer lacks question or tests")
    return q, list(dict.fromkeys(tests))


def filter_tests(tests: list[str], verdicts: list[TestStatus], cfg: SynthConfig
                 ) -> list[str] | None:
    """Tests the reference passed, or None when the question must be dropped."""
    kept = [t for t, v in zip(tests, verdicts, strict=True) if v is TestStatus.PASSED]
    if len(kept) <= cfg.min_passed or len(kept) < cfg.min_tests:
        return None
    return kept


async def _rewrite_all(cfg: SynthConfig, problems: list[Problem]
                       ) -> list[tuple[Problem, str, list[str], str] | None]:
    solver = LLMSettings(**{f.name: getattr(cfg, f.name) for f in fields(LLMSettings)})
    if cfg.solver_model:
        solver.model = cfg.solver_model
    async with ChatClient(cfg) as client, ChatClient(solver) as strong:
        async def one(p: Problem) -> tuple[Problem, str, list[str], str] | None:
            prompt = REWRITE_PROMPT.format(n_tests=cfg.n_tests, question=p.question)
            try:
                (text,) = await client.complete([{"role": "user", "content": prompt}],
                                                temperature=cfg.temperature,
                                                max_tokens=cfg.max_tokens, json_mode=True)
                q, tests = parse_rewrite(text)
            except ValueError:
                return None
            ref = p.reference
            if not ref:
                (ans,) = await strong.complete(
                    [{"role": "user", "content": SOLVE_PROMPT.format(question=q)}],
                    temperature=0.0, max_tokens=cfg.max_tokens)
                ref = extract_code(ans)
            return p, q, tests, ref

        tasks = [asyncio.ensure_future(one(p)) for p in problems]
        out = []
        for t in tqdm(tasks, desc="rewrite", unit="q"):
            out.append(await t)
        return out


def synthesize(cfg: SynthConfig) -> tuple[int, int]:
    """Run the stage; returns (kept, dropped) among questions processed now."""
    out = Path(cfg.out)
    dropped_path = out.with_name(out.name + ".dropped.jsonl")
    done = done_keys(out, "id") | done_keys(dropped_path, "id")
    todo = [p for p in load_problems(cfg.problems) if p.id not in done]
    rewrites = asyncio.run(_rewrite_all(cfg, todo))
    ready = [r for r in rewrites if r is not None]
    kept = dropped = 0
    ex_cfg = ExecSettings(workers=cfg.workers, timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb)
    ex = make_executor(ex_cfg)
    try:
        jobs = [Job(code=ref, tests=tests, timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb)
                for _, _, tests, ref in ready]
        results = run_jobs(ex, jobs, workers=cfg.workers * 2, desc="filter tests")
    finally:
        ex.close()
    with Appender(out) as good, Appender(dropped_path) as bad:
        for p, _ in [(p, None) for p, r in zip(todo, rewrites, strict=True) if r is None]:
            bad.write({"id": p.id, "reason": "unparseable rewrite"})
            dropped += 1
        for (p, q, tests, ref), res in zip(ready, results, strict=True):
            kept_tests = filter_tests(tests, [v.status for v in res.tests], cfg)
            if kept_tests is None:
                bad.write({"id": p.id, "reason": f"reference passed {res.passed}/{res.total}"})
                dropped += 1
                continue
            row: dict[str, Any] = Problem(
                id=p.id, question=q, tests=kept_tests, entry_point=called_name(kept_tests),
                reference=ref, source=p.source or "synth").to_row()
            good.write(row)
            kept += 1
    return kept, dropped


def main(argv: list[str] | None = None) -> None:
    cfg = parse_overrides(SynthConfig, sys.argv[1:] if argv is None else argv)
    kept, dropped = synthesize(cfg)
    print(f"kept {kept} questions, dropped {dropped}; output {cfg.out}")


if __name__ == "__main__":
    main()

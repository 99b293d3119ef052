"""Candidates: N programs per question, sampled from an LLM or made offline by mutation.

`python -m training.candidates.sample --problems=P.jsonl --out=C.jsonl --mode=mutate --n=12`
`python -m training.candidates.sample --problems=P.jsonl --out=C.jsonl --mode=llm --n=16
   --temperature=0.7 --base_url=http://host:8000/v1 --model=Qwen/Qwen2.5-Coder-7B-Instruct`
LLM answers go through `sandbox_worker.extract.extract_code` (markdown fences, prose).
The prompt shows the question plus `prompt_tests` asserts, as in AceCoder. In mutate mode
the reference itself is added as a candidate (`include_reference`). Resumable by question.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from sandbox_worker.extract import extract_code
from training.candidates.mutate import sample_mutants
from training.common.cli import parse_overrides
from training.common.llm import ChatClient, LLMSettings
from training.common.records import Appender, done_keys, text_hash
from training.problems.loaders import Problem, load_problems

SAMPLE_PROMPT = """{question}

Your code should pass these tests:
{tests}

Answer with one ```python code block."""


@dataclass
class SampleConfig(LLMSettings):
    """Candidate generation settings (all `--key=value` flags)."""

    problems: str = "problems.jsonl"
    out: str = "candidates.jsonl"
    mode: str = "mutate"  # mutate | llm
    n: int = 16  # candidates per question
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 1024
    prompt_tests: int = 2  # asserts shown in the prompt
    include_reference: bool = True  # mutate mode: the correct program is a candidate too
    order2_share: float = 0.3  # mutate mode: share of two-site mutants
    extra_ops: bool = False  # mutate mode: also the LLM-style operators (mutate_extra.py)
    seed: int = 0


def mutation_candidates(p: Problem, cfg: SampleConfig) -> Iterator[dict[str, Any]]:
    """Reference (optional) plus up to `n` distinct mutants of it."""
    if not p.reference:
        return
    if cfg.include_reference:
        yield {"problem_id": p.id, "candidate_id": f"{p.id}/ref", "code": p.reference,
               "origin": "reference"}
    seed = int(text_hash(str(cfg.seed), p.id), 16) % 2**31
    for k, (kind, code) in enumerate(sample_mutants(p.reference, cfg.n, seed=seed,
                                                    order2_share=cfg.order2_share,
                                                    extra=cfg.extra_ops)):
        yield {"problem_id": p.id, "candidate_id": f"{p.id}/m{k}", "code": code,
               "origin": f"mutant:{kind}"}


async def _llm_candidates(problems: list[Problem], cfg: SampleConfig, out: Appender) -> None:
    async with ChatClient(cfg) as client:
        async def one(p: Problem) -> list[dict[str, Any]]:
            prompt = SAMPLE_PROMPT.format(question=p.question,
                                          tests="\n".join(p.tests[: cfg.prompt_tests]))
            texts = await client.complete([{"role": "user", "content": prompt}],
                                          temperature=cfg.temperature, top_p=cfg.top_p,
                                          max_tokens=cfg.max_tokens, n=cfg.n)
            return [{"problem_id": p.id, "candidate_id": f"{p.id}/s{k}",
                     "code": extract_code(t), "origin": f"llm:{cfg.model}"}
                    for k, t in enumerate(texts)]

        tasks = [asyncio.ensure_future(one(p)) for p in problems]
        for t in tqdm(tasks, desc="sample", unit="q"):
            for row in await t:
                out.write(row)


def sample(cfg: SampleConfig) -> int:
    """Write candidates for questions not yet in `cfg.out`; returns questions done now."""
    done = done_keys(cfg.out, "problem_id")
    todo = [p for p in load_problems(cfg.problems) if p.id not in done]
    with Appender(cfg.out) as out:
        if cfg.mode == "mutate":
            for p in tqdm(todo, desc="mutate", unit="q"):
                for row in mutation_candidates(p, cfg):
                    out.write(row)
        elif cfg.mode == "llm":
            asyncio.run(_llm_candidates(todo, cfg, out))
        else:
            raise SystemExit(f"unknown mode {cfg.mode!r} (mutate | llm)")
    return len(todo)


def main(argv: list[str] | None = None) -> None:
    cfg = parse_overrides(SampleConfig, sys.argv[1:] if argv is None else argv)
    print(f"sampled {sample(cfg)} questions into {cfg.out}")


if __name__ == "__main__":
    main()

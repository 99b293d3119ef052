"""Pass rates: run every candidate against its problem's tests with the sandbox executor.

`python -m training.passrate --problems P.jsonl --candidates C.jsonl --out R.jsonl`
Resumable: candidates already in the output file are skipped. Programs run in parallel
(a thread pool over the thread-safe `Executor.run`); a tqdm bar shows progress.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sandbox_worker.executor import Executor
from sandbox_worker.protocol import Job, JobResult
from training.problems import Problem, load_problems
from training.records import Appender, done_keys, read_jsonl


@dataclass
class ExecSettings:
    """Sandbox limits for pass-rate runs."""

    workers: int = 2  # concurrent programs
    timeout_s: float = 4.0  # per assert, as in AceCoder's evaluation
    memory_mb: int = 1024  # address space per program
    isolation: str = "auto"  # bwrap | namespaces | none | auto


def make_executor(cfg: ExecSettings) -> Executor:
    """A started executor (caller closes it)."""
    ex = Executor(workers=cfg.workers, isolation=cfg.isolation)
    ex.start()
    return ex


def run_jobs(executor: Executor, jobs: list[Job], *, workers: int, desc: str = "exec",
             on_result: Callable[[int, JobResult], None] | None = None,
             progress: bool = True) -> list[JobResult]:
    """Run jobs in parallel, results in job order; identical jobs run once."""
    unique: dict[str, Job] = {}
    for j in jobs:
        unique.setdefault(j.job_id(), j)
    results: dict[str, JobResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(jobs), desc=desc, unit="prog", disable=not progress) as bar:
        futs = {k: pool.submit(executor.run, j) for k, j in unique.items()}
        for i, j in enumerate(jobs):
            key = j.job_id()
            results[key] = futs[key].result()
            if on_result is not None:
                on_result(i, results[key])
            bar.update(1)
    return [results[j.job_id()] for j in jobs]


def score_candidates(problems: Iterable[Problem], candidates: list[dict[str, Any]],
                     out_path: str | Path, cfg: ExecSettings, *, progress: bool = True,
                     executor: Executor | None = None) -> int:
    """Append pass-rate rows for candidates not yet in `out_path`; returns rows written."""
    by_id = {p.id: p for p in problems}
    done = done_keys(out_path, "candidate_id")
    todo = [c for c in candidates if c["candidate_id"] not in done and c["problem_id"] in by_id]
    if not todo:
        return 0
    jobs = [Job(code=c["code"], tests=by_id[c["problem_id"]].tests, timeout_s=cfg.timeout_s,
                memory_mb=cfg.memory_mb) for c in todo]
    own = executor is None
    ex = make_executor(cfg) if executor is None else executor
    try:
        with Appender(out_path) as out:
            def write(i: int, r: JobResult) -> None:
                out.write({**todo[i], "pass_rate": r.pass_rate, "passed": r.passed,
                           "total": r.total, "status": r.status.value})
            run_jobs(ex, jobs, workers=cfg.workers * 2, desc="pass rates",
                     on_result=write, progress=progress)
    finally:
        if own:
            ex.close()
    return len(todo)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", required=True)
    ap.add_argument("--candidates", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=ExecSettings.workers)
    ap.add_argument("--timeout-s", type=float, default=ExecSettings.timeout_s)
    ap.add_argument("--memory-mb", type=int, default=ExecSettings.memory_mb)
    ap.add_argument("--isolation", default=ExecSettings.isolation)
    args = ap.parse_args(argv)
    cfg = ExecSettings(args.workers, args.timeout_s, args.memory_mb, args.isolation)
    n = score_candidates(load_problems(args.problems), list(read_jsonl(args.candidates)),
                         args.out, cfg)
    print(f"scored {n} new candidates into {args.out}")


if __name__ == "__main__":
    main()

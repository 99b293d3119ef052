"""Pass rates: run every candidate against its problem's tests with the sandbox executor.

`python -m training.problems.passrate --problems P.jsonl --candidates C.jsonl --out R.jsonl`
Resumable: candidates already in the output file are skipped; a row counts as done only for
the same code, tests and limit (its `run_key`), so a changed mutant set or edited problem
reruns instead of reusing a stale pass rate. Programs run in parallel
(a thread pool over the thread-safe `Executor.run`); a tqdm bar shows progress.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sandbox_worker.executor import Executor
from sandbox_worker.protocol import Job, JobResult, TestSpec
from training.common.records import Appender, done_keys, read_jsonl, text_hash
from training.problems.loaders import Problem, load_problems


@dataclass
class ExecSettings:
    """Sandbox limits for pass-rate runs."""

    workers: int = 2  # concurrent programs
    timeout_s: float = 4.0  # per assert, as in AceCoder's evaluation
    memory_mb: int = 1024  # address space per program
    isolation: str = "auto"  # bwrap | namespaces | none | auto
    # skip a program's later asserts after its first timeout (counted failed): a looping
    # mutant then costs one limit, not one per assert; off = AceCoder's every-assert rate
    stop_after_timeout: bool = False


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
    positions: dict[str, list[int]] = {}
    for i, j in enumerate(jobs):
        positions.setdefault(j.job_id(), []).append(i)
    results: dict[str, JobResult] = {}
    # the bar advances as programs finish (not in job order: one slow program early on
    # would freeze it and make its rate and ETA meaningless)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(jobs), desc=desc, unit="prog", disable=not progress) as bar:
        futs = {pool.submit(executor.run, j): k for k, j in unique.items()}
        for fut in as_completed(futs):
            key = futs[fut]
            results[key] = fut.result()
            for i in positions[key]:
                if on_result is not None:
                    on_result(i, results[key])
            bar.update(len(positions[key]))
    return [results[j.job_id()] for j in jobs]


def run_key(code: str, tests: list[str] | TestSpec, timeout_s: float,
            stop_after_timeout: bool = False) -> str:
    """What a pass rate depends on: program, tests, per-test limit (and the timeout policy)."""
    policy = ["stop_after_timeout"] if stop_after_timeout else []
    dumped = tests if isinstance(tests, list) else tests.model_dump()
    return text_hash(code, json.dumps(dumped), f"{timeout_s:.6f}", *policy)


def score_candidates(problems: Iterable[Problem], candidates: list[dict[str, Any]],
                     out_path: str | Path, cfg: ExecSettings, *, progress: bool = True,
                     executor: Executor | None = None) -> int:
    """Append pass-rate rows for candidates not yet in `out_path`; returns rows written."""
    by_id = {p.id: p for p in problems}
    done = done_keys(out_path, "run_key")
    keyed = [{**c, "run_key": run_key(c["code"], by_id[c["problem_id"]].job_tests(), cfg.timeout_s,
                                       cfg.stop_after_timeout)}
             for c in candidates if c["problem_id"] in by_id]
    todo = [c for c in keyed if c["run_key"] not in done]
    if not todo:
        return 0
    jobs = [Job(code=c["code"], tests=by_id[c["problem_id"]].job_tests(), timeout_s=cfg.timeout_s,
                memory_mb=cfg.memory_mb, stop_after_timeout=cfg.stop_after_timeout)
            for c in todo]
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


def scored_rows(problems: Iterable[Problem], candidates: list[dict[str, Any]],
                out_path: str | Path, timeout_s: float, stop_after_timeout: bool = False
                ) -> list[dict[str, Any]]:
    """The pass-rate rows of exactly these candidates (same code, tests, limit), in order."""
    tests = {p.id: p.job_tests() for p in problems}
    rows = {r.get("run_key"): r for r in read_jsonl(out_path)}
    out = []
    for c in candidates:
        if c["problem_id"] in tests:
            r = rows.get(run_key(c["code"], tests[c["problem_id"]], timeout_s,
                                 stop_after_timeout))
            if r is not None:
                out.append({**r, **c})
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", required=True)
    ap.add_argument("--candidates", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=ExecSettings.workers)
    ap.add_argument("--timeout-s", type=float, default=ExecSettings.timeout_s)
    ap.add_argument("--memory-mb", type=int, default=ExecSettings.memory_mb)
    ap.add_argument("--isolation", default=ExecSettings.isolation)
    ap.add_argument("--stop-after-timeout", action="store_true",
                    help="skip a program's later asserts after its first timeout")
    args = ap.parse_args(argv)
    cfg = ExecSettings(args.workers, args.timeout_s, args.memory_mb, args.isolation,
                       args.stop_after_timeout)
    n = score_candidates(load_problems(args.problems), list(read_jsonl(args.candidates)),
                         args.out, cfg)
    print(f"scored {n} new candidates into {args.out}")


if __name__ == "__main__":
    main()

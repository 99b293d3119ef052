"""stdio-kind benchmark, Python and C++: `python -m sandbox_worker.bench_stdio`.

Runs the same programs on the same cases four ways, in one process, and prints a table:
- plain: `subprocess.run` of the script (a fresh interpreter) or the binary per case, no
  isolation at all (the floor a user would write);
- bwrap per case: one bubblewrap sandbox start per case (SandboxFusion's model: a sandboxed
  process per test), same read-only root, no network;
- ours: the executor's `stdio` kind (namespaces, one child per program, a fork of the warm
  interpreter or an exec of the cached binary per case).
Per case: p50 wall ms; per program: programs/s. For C++ also a cold compile against a cache
hit of the same source. Writes bench-results/execute_stdio.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sandbox_worker import languages
from sandbox_worker.executor import Executor
from sandbox_worker.kinds import builds
from sandbox_worker.protocol import Job, StdioTests

PY = "import sys\nnums = list(map(int, sys.stdin.read().split()))\nprint(sum(nums), max(nums))\n"
CPP = ("#include <cstdio>\nint main(){long s=0,m=-(1L<<62),x;while(scanf(\"%ld\",&x)==1)"
       "{s+=x;if(x>m)m=x;}printf(\"%ld %ld\\n\",s,m);}")


def _cases(k: int, seed: int) -> list[tuple[str, str]]:
    out = []
    for i in range(k):
        nums = [(seed * 7919 + i * 104729 + j * 31) % 1000 for j in range(50)]
        out.append((" ".join(map(str, nums)) + "\n", f"{sum(nums)} {max(nums)}\n"))
    return out


def _bwrap(argv: list[str], binds: list[str]) -> list[str]:
    cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--proc", "/proc",
           "--dev", "/dev", "--tmpfs", "/tmp"]
    for d in ("/usr", "/bin", "/lib", "/lib64", "/etc", *binds):
        if os.path.exists(d):
            cmd += ["--ro-bind", d, d]
    return [*cmd, *argv]


def _per_case(argv: list[str], cases: list[tuple[str, str]], workers: int,
              ) -> tuple[float, float, int]:
    """Wall seconds, p50 ms per case and cases passed, one process per case."""
    def one(case: tuple[str, str]) -> tuple[float, bool]:
        t = time.perf_counter()
        out = subprocess.run(argv, input=case[0], capture_output=True, text=True, timeout=30,
                             check=False)
        return (time.perf_counter() - t) * 1000, out.stdout.split() == case[1].split()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        got = list(pool.map(one, cases))
    return (time.perf_counter() - t0, statistics.median(ms for ms, _ in got),
            sum(ok for _, ok in got))


def _ours(ex: Executor, code: str, language: str, programs: list[list[tuple[str, str]]],
          workers: int) -> tuple[float, float, int]:
    """Wall seconds, p50 ms per case (fork to exit, as the child measured it) and passes."""
    jobs = [Job(code=code, language=language,
                tests=StdioTests(kind="stdio", cases=[{"input": a, "output": b}  # type: ignore[misc]
                                                      for a, b in cases]),
                timeout_s=10, memory_mb=512) for cases in programs]
    ex.run(jobs[0])  # warm: a C++ program is compiled here once, later jobs hit the cache
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(ex.run, jobs))
    wall = time.perf_counter() - t0
    p50 = statistics.median(t.duration_ms for r in results for t in r.tests)
    return wall, p50, sum(r.passed for r in results)


def _compile_times(ex: Executor, repeats: int) -> tuple[float, float]:
    """Median ms of a job that compiles a fresh C++ source (no cases), and of the same job
    again (a cache hit), through the executor."""
    cold, hot = [], []
    for i in range(repeats):
        code = CPP + f"\n// variant {time.time_ns()} {i}\n"
        job = Job(code=code, language="cpp", timeout_s=10, memory_mb=512,
                  tests=StdioTests(kind="stdio", cases=[]))
        misses = builds.CACHE.misses
        t = time.perf_counter()
        status = ex.run(job).status.value  # no cases: the compile alone
        assert status == "ok", status
        cold.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        ex.run(job)
        hot.append((time.perf_counter() - t) * 1000)
        assert builds.CACHE.misses == misses + 1, "the second run must be a cache hit"
    return statistics.median(cold), statistics.median(hot)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=40)
    ap.add_argument("--cases", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="bench-results/execute_stdio.md")
    args = ap.parse_args(argv)
    programs = [_cases(args.cases, p) for p in range(args.programs)]
    flat = [c for p in programs for c in p]
    n_cases = len(flat)
    ex = Executor(workers=args.workers, isolation="namespaces")
    ex.start()
    rows: list[tuple[str, str, float, float, int]] = []
    try:
        tmp = Path(tempfile.mkdtemp(prefix="bench-stdio-"))
        script = tmp / "main.py"
        script.write_text(PY)
        # the base interpreter (not this venv's) for both: the same start-up cost, and bwrap
        # then needs only the installation and the script bound in
        python = os.path.realpath(sys.executable)
        binds = [str(Path(sys.base_prefix)), str(tmp)]
        for name, argv_ in (("plain subprocess per case", [python, str(script)]),
                            ("bwrap per case (SandboxFusion-style)",
                             _bwrap([python, str(script)], binds))):
            wall, p50, ok = _per_case(argv_, flat, args.workers)
            rows.append(("python", name, wall, p50, ok))
        wall, p50, ok = _ours(ex, PY, "python", programs, args.workers)
        rows.append(("python", "ours (namespaces, fork per case)", wall, p50, ok))
        cold = hot = float("nan")
        if languages.version("cpp") is not None:
            binary = tmp / "main"
            (tmp / "main.cpp").write_text(CPP)
            subprocess.run(["g++", "-O2", "-o", str(binary), str(tmp / "main.cpp")], check=True)
            for name, argv_ in (("plain subprocess per case", [str(binary)]),
                                ("bwrap per case (SandboxFusion-style)",
                                 _bwrap([str(binary)], [str(tmp)]))):
                wall, p50, ok = _per_case(argv_, flat, args.workers)
                rows.append(("cpp", name, wall, p50, ok))
            wall, p50, ok = _ours(ex, CPP, "cpp", programs, args.workers)
            rows.append(("cpp", "ours (namespaces, cached binary)", wall, p50, ok))
            cold, hot = _compile_times(ex, 5)
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        ex.close()
    lines = [f"{args.programs} programs x {args.cases} cases ({n_cases} cases), "
             f"{args.workers} workers, {os.cpu_count()} CPUs",
             "", "| language | how | programs/s | cases/s | mean ms per case | p50 ms per case | "
             "speed vs plain | passed |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    plain = {lang: wall for lang, name, wall, _, _ in rows if name.startswith("plain")}
    for lang, name, wall, p50, ok in rows:
        mean = wall * 1000 * args.workers / n_cases
        lines.append(f"| {lang} | {name} | {args.programs / wall:.1f} | {n_cases / wall:.0f} | "
                     f"{mean:.2f} | {p50:.2f} | {plain[lang] / wall:.2f}x | {ok}/{n_cases} |")
    lines += ["", "mean ms per case: wall x workers / cases (all overheads included); p50: per "
              "case wall (ours: fork to exit, as the sandboxed child measured it)",
              "", f"C++ compile, same source: cold {cold:.0f} ms, cache hit {hot:.2f} ms "
              f"({cold / hot:.0f}x)"]
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()

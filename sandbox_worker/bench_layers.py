"""Cost of each hardening layer: `python -m sandbox_worker.bench_layers`.

The 164 HumanEval canonical solutions through executors that differ in one layer each, in
one process and run, interleaved round by round so that load drifts hit every row alike:
everything on (the default), then without seccomp, without a network namespace per
program, without a CPU bandwidth per program, with the watcher instead of a cgroup, and
without an aggregate memory bound; the last row has all of them off. Prints programs/s
(best of the rounds) and the cost of the layer against the default; then the peak memory a
fork-and-allocate program holds under each memory bound. Writes
bench-results/execute_layers.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sandbox_worker.bench import humaneval_programs
from sandbox_worker.executor import Executor
from sandbox_worker.protocol import Job

CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("all layers on (default)", {}),
    ("without seccomp", {"disable": frozenset({"seccomp"})}),
    ("without a network namespace per program", {"disable": frozenset({"netns"})}),
    ("without a CPU bandwidth per program", {"cpus": 0}),
    ("memory bound: watcher instead of cgroup", {"memory_bound": "watch"}),
    ("without an aggregate memory bound", {"memory_bound": "none"}),
    ("all off", {"memory_bound": "none", "cpus": 0,
                 "disable": frozenset({"seccomp", "netns"})}),
]


def _rate(ex: Executor, jobs: list[Job], workers: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers * 2) as pool:
        results = list(pool.map(ex.run, jobs))
    rate = len(jobs) / (time.perf_counter() - start)
    if any(r.pass_rate != 1.0 for r in results):
        raise SystemExit("a canonical solution did not pass: the run is not comparable")
    return rate


FORK_AND_ALLOCATE = """
import os, time
for _ in range(5):
    if os.fork() == 0:
        b = bytearray(200 * 1024 * 1024)
        for i in range(0, len(b), 4096):
            b[i] = 1
        time.sleep(20)
        os._exit(0)
b = bytearray(200 * 1024 * 1024)
for i in range(0, len(b), 4096):
    b[i] = 1
time.sleep(3)
def f():
    return 1
"""


def _sandbox_procs(fields: tuple[str, ...]) -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, bytes of the smaps_rollup `fields`) of the sandbox uids' processes."""
    from sandbox_worker import isolation

    lo, hi = isolation.HOST_UID_BASE, isolation.HOST_UID_BASE + isolation.SANDBOX_UIDS
    procs: dict[int, tuple[int, int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
            if not (lo <= uid < hi or uid == isolation.HOST_NOBODY):
                continue
            with open(f"/proc/{pid}/stat") as fh:
                ppid = int(fh.read().rpartition(")")[2].split()[1])
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                held = sum(int(x.split()[1]) * 1024 for x in fh if x.startswith(fields))
        except (OSError, IndexError, ValueError):
            continue
        procs[int(pid)] = (ppid, held)
    return procs


class ProgramMeter:
    """Memory that the programs of the spares waiting now go on to hold, read from outside.

    Counts the anonymous and shared-memory PSS of every sandbox process descended from (or
    being) a leaf of the sandbox's process tree at creation (a spare waiting for its program),
    less what those leaves held then. Not counted: spares forked later (children of a zygote,
    not of a leaf) and file pages shared with the host, whose PSS share moves as processes map
    them; a whole-uid sum counted both and drifted by tens of MiB on a loaded host.
    """

    FIELDS = ("Pss_Anon:", "Pss_Shmem:")

    def __init__(self, settle_s: float = 5.0) -> None:
        deadline, before = time.monotonic() + settle_s, self._leaves()
        while True:  # until the spares are all forked: the leaf set holds still for 0.2 s
            time.sleep(0.2)
            now = self._leaves()
            if (now == before and now) or time.monotonic() > deadline:
                break
            before = now
        self.roots = set(now)
        self.idle = sum(now.values())

    def _leaves(self) -> dict[int, int]:
        procs = _sandbox_procs(self.FIELDS)
        parents = {ppid for ppid, _ in procs.values()}
        return {pid: held for pid, (_, held) in procs.items() if pid not in parents}

    def held(self) -> int:
        procs = _sandbox_procs(self.FIELDS)
        total = 0
        for pid, (_, held) in procs.items():
            up = pid
            while up in procs and up not in self.roots:
                up = procs[up][0]
            total += held if up in self.roots else 0
        return total - self.idle

    def peak_while(self, busy: Callable[[], bool], every_s: float = 0.02) -> int:
        peak = 0
        while busy():
            peak = max(peak, self.held())
            time.sleep(every_s)
        return peak


def fork_and_allocate() -> list[str]:
    """Peak memory a program of six 200 MiB processes holds with memory_mb=512, per bound."""
    import threading

    rows = ["| memory bound | peak held (anonymous PSS of the program's processes, read outside) "
            "| result |", "|---|---:|---|"]
    for bound in ("cgroup", "watch", "none"):
        ex = Executor(1, isolation="namespaces", memory_bound=bound)
        ex.start()
        out: list[Any] = []
        job = Job(code=FORK_AND_ALLOCATE, tests=["assert f() == 1"], timeout_s=10, memory_mb=512)
        meter = ProgramMeter()
        runner = threading.Thread(target=lambda ex=ex, job=job, out=out: out.append(ex.run(job)))
        runner.start()
        peak = meter.peak_while(runner.is_alive)
        level = ex.memory_bound
        ex.close()
        r = out[0]
        rows.append(f"| {level} | {peak / 2**20:.0f} MiB | {r.status.value}: "
                    f"{r.error or r.tests[0].status.value} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="bench-results/execute_layers.md")
    args = ap.parse_args(argv)
    jobs = [Job(code=c, tests=t, timeout_s=3.0, memory_mb=1024)
            for _, c, t, _ in humaneval_programs()]
    executors = []
    for name, kw in CONFIGS:
        ex = Executor(args.workers, isolation="namespaces", **kw)
        ex.start()
        executors.append((name, ex))
    best = {name: 0.0 for name, _ in CONFIGS}
    try:
        for _ in range(args.rounds):
            for name, ex in executors:
                best[name] = max(best[name], _rate(ex, jobs, args.workers))
        levels = {name: f"seccomp {'on' if ex.seccomp else 'off'}, memory {ex.memory_bound}, "
                        f"cpu {ex.cpu_bound}" for name, ex in executors}
    finally:
        for _, ex in executors:
            ex.close()
    base = best[CONFIGS[0][0]]
    lines = [f"164 HumanEval programs, {args.workers} workers, best of {args.rounds} rounds",
             "", "| executor | layers in force | programs/s | vs default |",
             "|---|---|---:|---:|"]
    for name, _ in CONFIGS:
        lines.append(f"| {name} | {levels[name]} | {best[name]:.1f} | "
                     f"{best[name] / base:.3f}x |")
    lines += ["", "fork-and-allocate (6 x 200 MiB, memory_mb=512):", "", *fork_and_allocate()]
    text = "\n".join(lines)
    sys.stdout.write(text + "\n")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()

"""A program's CPU is bounded as a whole (every process and thread it starts) by its cgroup's
CPU bandwidth, measured from outside: the zygote reaps each program's child, whose pid-1
init has reaped everything the program forked, so the zygote's children CPU times grow by
exactly what the program used."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from sandbox_worker.executor import Executor, SandboxUnavailable
from sandbox_worker.protocol import Job

SPIN_S = 1.5
# six processes, each with a thread: all spin for SPIN_S of wall time, then are waited for
FAN_OUT = f"""
import os, threading, time
def spin():
    end = time.monotonic() + {SPIN_S}
    while time.monotonic() < end:
        pass
kids = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        t = threading.Thread(target=spin)
        t.start()
        spin()
        t.join()
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.waitpid(k, 0)
def f():
    return 1
"""


def _zygote_pids(ex: Executor) -> list[int]:
    """The zygotes' processes (each boot process forks the zygote proper)."""
    out = []
    for z in ex._zygotes:
        out.append(z.proc.pid)
        for task in os.listdir(f"/proc/{z.proc.pid}/task"):
            with open(f"/proc/{z.proc.pid}/task/{task}/children") as fh:
                out += [int(p) for p in fh.read().split()]
    return out


def _reaped_cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[13]) + int(fields[14])  # cutime + cstime
    return total / os.sysconf("SC_CLK_TCK")


def _program_cpu_s(ex: Executor) -> float:
    pids = _zygote_pids(ex)
    time.sleep(0.5)  # spares forked and settled
    before = _reaped_cpu_s(pids)
    result = ex.run(Job(code=FAN_OUT, tests=["assert f() == 1"], timeout_s=20, memory_mb=512))
    assert result.passed == 1, result
    time.sleep(0.6)  # the zygote reaps within its 0.2 s poll
    return _reaped_cpu_s(pids) - before


@pytest.fixture(scope="module")
def half_cpu() -> Iterator[Executor]:
    ex = Executor(workers=1, isolation="namespaces", memory_bound="cgroup", cpus=0.5)
    try:
        ex.start()
    except SandboxUnavailable as exc:
        pytest.skip(f"no cgroup: {exc}")
    if ex.cpu_bound == "rlimit":
        ex.close()
        pytest.skip("this host's cgroups give no cpu controller")
    try:
        yield ex
    finally:
        ex.close()


def test_cpu_bound_is_reported(half_cpu: Executor) -> None:
    assert half_cpu.cpu_bound == "0.5 cpu"


def test_fan_out_gets_at_most_its_cpus(half_cpu: Executor) -> None:
    # twelve spinning threads in six processes get half a CPU between them: about 0.75 s of
    # CPU over the 1.5 s they spin, where one unbounded core alone would give them 1.5 s
    used = _program_cpu_s(half_cpu)
    assert used <= 0.5 * SPIN_S * 1.25 + 0.15, f"{used:.2f} s of CPU"


def test_without_the_bound_the_same_program_gets_more() -> None:
    ex = Executor(workers=1, isolation="namespaces", memory_bound="cgroup", cpus=0)
    try:
        ex.start()
    except SandboxUnavailable as exc:
        pytest.skip(str(exc))
    try:
        assert ex.cpu_bound == "rlimit"
        assert _program_cpu_s(ex) > 0.5 * SPIN_S * 1.25 + 0.15
    finally:
        ex.close()

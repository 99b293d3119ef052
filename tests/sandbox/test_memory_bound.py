"""A program's memory is bounded as a whole (all the processes it forks), by a cgroup where the
host allows one and by the watcher where it does not, measured from outside."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox_worker import cgroups
from sandbox_worker.bench_layers import FORK_AND_ALLOCATE, ProgramMeter
from sandbox_worker.executor import Executor, SandboxUnavailable
from sandbox_worker.protocol import Job, StdioTests

MIB = 1024 * 1024


def _peak_of(ex: Executor, job: Job) -> tuple[int, object]:
    """Peak memory the job's program holds (all its processes), and its result."""
    meter = ProgramMeter()  # once the spares of this and other executors wait: not the program's
    out: list[object] = []
    runner = threading.Thread(target=lambda: out.append(ex.run(job)))
    runner.start()
    return meter.peak_while(runner.is_alive), out[0] if out else None


@pytest.fixture(params=["cgroup", "watch"], scope="module")
def bounded(request: pytest.FixtureRequest) -> Iterator[Executor]:
    ex = Executor(workers=1, isolation="namespaces", memory_bound=request.param)
    try:
        ex.start()
    except SandboxUnavailable as exc:
        pytest.skip(f"{request.param}: {exc}")
    try:
        yield ex
    finally:
        ex.close()


def test_level_is_reported(bounded: Executor) -> None:
    assert bounded.memory_bound in ("cgroup-v1", "cgroup-v2", "watch")


@pytest.mark.parametrize("kind", ["asserts", "stdio"])
def test_fork_and_allocate_holds_at_most_its_limit(bounded: Executor, kind: str) -> None:
    limit_mb = 512
    if kind == "asserts":
        job = Job(code=FORK_AND_ALLOCATE, tests=["assert f() == 1"], timeout_s=10,
                  memory_mb=limit_mb)
    else:
        job = Job(code=FORK_AND_ALLOCATE + "print(f())", timeout_s=10, memory_mb=limit_mb,
                  tests=StdioTests(kind="stdio", cases=[{"input": "", "output": "1"}]))  # type: ignore[list-item]
    peak, result = _peak_of(bounded, job)
    assert result is not None and result.passed == 0, result  # type: ignore[attr-defined]
    # the meter saw the program: its first process alone touches 200 MiB before any limit
    assert peak >= 150 * MIB, f"{peak / MIB:.0f} MiB: the meter missed the program"
    # the limit plus what one watcher interval lets a program touch (cgroups: nothing more)
    slack = 32 * MIB if bounded.memory_bound.startswith("cgroup") else 256 * MIB
    assert peak <= limit_mb * MIB + slack, f"{peak / MIB:.0f} MiB held in total"
    assert bounded.healthy()


def test_honest_program_under_the_bound_passes(bounded: Executor) -> None:
    code = "b = bytearray(100 * 1024 * 1024)\ndef f():\n    return len(b)"
    job = Job(code=code, tests=[f"assert f() == {100 * MIB}"], timeout_s=10, memory_mb=512)
    assert bounded.run(job).passed == 1


def test_groups_are_removed() -> None:
    groups = cgroups.detect()
    if groups is None:
        pytest.skip("no usable cgroup here")
    bases = list(groups.bases.values())
    assert all(b.is_dir() for b in bases)
    groups.close()
    assert not any(b.exists() for b in bases)


def test_without_a_bound_the_same_program_holds_more() -> None:
    # the measurement can fail: with RLIMIT_AS only, the forks together exceed the limit
    ex = Executor(workers=1, isolation="namespaces", memory_bound="none")
    try:
        ex.start()
    except SandboxUnavailable as exc:
        pytest.skip(str(exc))
    try:
        assert ex.memory_bound == "rlimit"
        job = Job(code=FORK_AND_ALLOCATE, tests=["assert f() == 1"], timeout_s=10, memory_mb=512)
        peak, _ = _peak_of(ex, job)
        assert peak > 900 * MIB, f"{peak / MIB:.0f} MiB"
    finally:
        ex.close()


FOUR_FORKS = """
import os, time
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        b = bytearray(48 * 1024 * 1024)
        for i in range(0, len(b), 4096):
            b[i] = 1
        time.sleep(1.5)
        os._exit(0)
    kids.append(pid)
time.sleep(1)
def f():
    return [os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) for k in kids]
"""


def test_reused_groups_take_each_jobs_limit(bounded: Executor) -> None:
    # one worker, so programs take turns over a few reused groups: each must hold the limit
    # of its own job, up and down (a group keeps its last limit until one differs)
    for limit_mb in (512, 128, 512, 128, 512):
        job = Job(code=FOUR_FORKS, tests=["assert f() == [0, 0, 0]"], timeout_s=10,
                  memory_mb=limit_mb)
        result = bounded.run(job)
        assert result.passed == (1 if limit_mb == 512 else 0), (limit_mb, result)


def test_reused_groups_start_nearly_empty(tmp_path: Path) -> None:
    # page cache a program leaves behind stays charged to its group after it exits: a group
    # is reused only once its leftovers are dropped below LEFTOVER_BYTES, else removed
    groups = cgroups.detect()
    if groups is None:
        pytest.skip("no usable cgroup here")
    try:
        writer = subprocess.Popen(
            ["sh", "-c", f"read go; head -c 16M /dev/zero > {tmp_path / 'f'}; sync"],
            stdin=subprocess.PIPE)
        made = groups.attach(writer.pid, 256, 16)
        assert writer.communicate(b"go\n", timeout=30) == (None, None)
        memory = next(g for g in made if groups._memory_group(g))
        usage = memory / ("memory.current" if groups.version == "v2" else
                          "memory.usage_in_bytes")
        assert int(usage.read_text()) > cgroups.LEFTOVER_BYTES  # else the test proves nothing
        groups.release(made)
        for _ in range(3):
            groups.sweep()
        if memory in [g for gs in groups._free for g in gs]:
            assert int(usage.read_text()) <= cgroups.LEFTOVER_BYTES, "reused with leftovers"
        else:  # could not be emptied enough: on its way out
            assert memory in groups._no_reuse or not memory.exists()
    finally:
        groups.close()


def test_a_group_whose_limits_failed_is_never_reused() -> None:
    # a limit the kernel refuses (pids.max = -5) fails the attach; that group must be removed,
    # not reused as if its limits held
    groups = cgroups.detect()
    if groups is None:
        pytest.skip("no usable cgroup here")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        groups.sweep()  # detect()'s probe group: emptied, free for reuse
        assert groups._free, "nothing to reuse: the test would not cover the reuse path"
        for _ in range(2):  # a reused group first, then a new one
            with pytest.raises(OSError):
                groups.attach(sleeper.pid, 64, -5)
        for _ in range(3):
            groups.sweep()
        assert groups._free == [], "a half-limited group was kept for reuse"
    finally:
        sleeper.kill()
        sleeper.wait()
        groups.close()

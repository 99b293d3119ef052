"""A program's memory is bounded as a whole (all the processes it forks), by a cgroup where the
host allows one and by the watcher where it does not, measured from outside."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from sandbox_worker import cgroups
from sandbox_worker.bench_layers import FORK_AND_ALLOCATE, sandbox_pss
from sandbox_worker.executor import Executor, SandboxUnavailable
from sandbox_worker.protocol import Job, StdioTests

MIB = 1024 * 1024


def _peak_while(run: threading.Thread) -> int:
    peak = 0
    while run.is_alive():
        peak = max(peak, sandbox_pss())
        time.sleep(0.02)
    return peak


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
    out: list[object] = []
    time.sleep(0.3)  # spares forked
    idle = sandbox_pss()  # spare children of this and other executors: not the program's
    runner = threading.Thread(target=lambda: out.append(bounded.run(job)))
    runner.start()
    peak = _peak_while(runner) - idle
    result = out[0]
    assert result.passed == 0, result  # type: ignore[attr-defined]
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
        runner = threading.Thread(target=ex.run, args=(job,))
        runner.start()
        assert _peak_while(runner) > 900 * MIB
    finally:
        ex.close()

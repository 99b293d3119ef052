"""The starvation-aware test clock, on real processes (/proc), without timing assertions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from sandbox_worker.clock import StarvationClock, host_pid


@pytest.fixture
def spinner() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is always runnable (state R)."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def pipe() -> Iterator[int]:
    """The read end of a pipe nobody writes to."""
    r, w = os.pipe()
    yield r
    os.close(r)
    os.close(w)


def test_host_pid_of_a_pidfd(spinner: subprocess.Popen[bytes]) -> None:
    fd = os.pidfd_open(spinner.pid)
    try:
        assert host_pid(fd) == spinner.pid
    finally:
        os.close(fd)


def test_a_starved_runnable_child_gets_more_time(spinner: subprocess.Popen[bytes],
                                                 pipe: int) -> None:
    clock = StarvationClock(spinner.pid)
    first = clock.start(100.0)  # far more CPU than it can use before the cap below
    clock.cap = time.monotonic() + 0.2
    now = time.monotonic()
    assert clock.wait(pipe, now) > now
    assert first > now


def test_a_child_past_its_cpu_limit_is_not_extended(spinner: subprocess.Popen[bytes],
                                                    pipe: int) -> None:
    clock = StarvationClock(spinner.pid)
    clock.start(0.0)
    now = time.monotonic()
    assert clock.wait(pipe, now) == now


def _settle(pid: int, state: str) -> None:
    """Wait (bounded) until the process is in `state`: a fresh one is runnable at first."""
    for _ in range(500):
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == state:
                return
        time.sleep(0.01)


def test_sleeping_or_stopped_children_are_not_extended(pipe: int) -> None:
    proc = subprocess.Popen(["sleep", "100"])
    try:
        clock = StarvationClock(proc.pid)
        clock.start(100.0)
        _settle(proc.pid, "S")
        now = time.monotonic()
        assert clock.wait(pipe, now) == now
        proc.send_signal(signal.SIGSTOP)
        _settle(proc.pid, "T")
        assert clock.wait(pipe, now) == now
    finally:
        proc.kill()
        proc.wait()


def test_an_answer_waiting_is_read_by_the_cap() -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"x")
        clock = StarvationClock(None)
        deadline = clock.start(1.0)
        assert clock.wait(r, deadline) == clock.cap > deadline
    finally:
        os.close(r)
        os.close(w)


def test_cpu_clock_of_another_process(spinner: subprocess.Popen[bytes]) -> None:
    from sandbox_worker.clock import _cpu_s

    first = _cpu_s(spinner.pid)
    assert first is not None
    for _ in range(3000):  # it spins, so its CPU time moves on
        if (_cpu_s(spinner.pid) or 0.0) > first:
            break
        time.sleep(0.01)
    assert (_cpu_s(spinner.pid) or 0.0) > first
    spinner.kill()
    spinner.wait()
    assert _cpu_s(spinner.pid) is None

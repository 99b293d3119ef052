"""Per-test deadlines that do not punish a program for the machine being busy.

A test's limit is wall-clock time, but on a loaded host a child can be runnable and still not
get the CPU: an honest test would then time out on one run and pass on the next, and the
reward would depend on load. So when the deadline passes while the child is runnable (state R)
and has used less CPU time in this test than the limit, the deadline moves on in small steps,
up to STARVED_FACTOR times the limit. A sleeping, stopped or CPU-bound-past-its-limit child
times out at the plain deadline, as before.
"""

from __future__ import annotations

import select
import time

STARVED_FACTOR = 3.0  # most wall time a starved test may get, in multiples of its limit
_STEP_S = 0.05  # how far one extension moves the deadline, seconds


def host_pid(pidfd: int) -> int | None:
    """The pid of a pidfd's process in our pid namespace (from /proc/self/fdinfo)."""
    try:
        with open(f"/proc/self/fdinfo/{pidfd}") as fh:
            for line in fh:
                if line.startswith("Pid:"):
                    pid = int(line.split()[1])
                    return pid if pid > 0 else None
    except (OSError, ValueError):
        return None
    return None


def _state(pid: int) -> str | None:
    """State letter of a process (R: runnable), or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _cpu_s(pid: int) -> float | None:
    """CPU seconds a process has used (all its threads), or None when it is gone.

    Read from its process CPU clock (clock_getcpuclockid(3)'s encoding: CPUCLOCK_SCHED of
    pid): one syscall, where /proc/<pid>/stat costs an open, a read and a parse per test.
    """
    try:
        return time.clock_gettime((~pid << 3) | 2)
    except OSError:
        return None


class StarvationClock:
    """The limit of the test now running in one child, and the CPU time it started with."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.cpu0, self.limit_s, self.cap = 0.0, 0.0, 0.0

    def start(self, limit_s: float) -> float:
        """Start timing a test of `limit_s` seconds; returns its plain deadline."""
        now = time.monotonic()
        self.cpu0 = (_cpu_s(self.pid) if self.pid else None) or 0.0
        self.limit_s, self.cap = limit_s, now + STARVED_FACTOR * limit_s
        return now + limit_s

    def starved(self) -> bool:
        """Whether the process is runnable and has used less CPU than the limit so far."""
        if not self.pid or _state(self.pid) != "R":
            return False
        cpu = _cpu_s(self.pid)
        return cpu is not None and cpu - self.cpu0 < self.limit_s

    def wait(self, fd: int, deadline: float) -> float:
        """Wait until `fd` is readable or the test's time is up; returns the deadline to read
        the frame by (past: time is up)."""
        while True:
            left = max(0.0, deadline - time.monotonic())
            if select.select([fd], [], [], left)[0]:
                return max(deadline, self.cap)  # an answer is coming: finish it by the cap
            if time.monotonic() >= self.cap or not self.starved():
                return deadline
            deadline = min(self.cap, time.monotonic() + _STEP_S)

"""Per-program memory and process limits with cgroups: one group per program, so the limit
holds for the program as a whole (every process and thread it starts), not per process as
RLIMIT_AS does.

A program's sandboxed child is moved into a fresh group when its job takes it; what it forks
stays inside. The group gets `memory_mb` of memory with no swap, the job's process limit and,
where the cpu controller is ours too, a CPU bandwidth of `cpus` CPUs (cpu.max, v1
cpu.cfs_quota_us) for all its processes and threads together;
over the memory limit the kernel's OOM killer ends a process of that group only, which the
supervisor sees as the child (or a case) ending: `killed`, never a pass. Groups are removed
once their processes are gone.

Where groups live:
- cgroup v2: `CODEREWARD_CGROUP` (a delegated, writable cgroup2 directory with no processes
  of its own, e.g. a systemd `Delegate=yes` slice or a container's /sys/fs/cgroup), or this
  process's own group when it may enable the memory and pids controllers below it;
- cgroup v1: below this process's own group in the `memory` and `pids` hierarchies (and
  `cpu`, when writable too), when they are writable (root in a container with
  /sys/fs/cgroup mounted read-write).
`detect()` returns None when neither works; the executor then says so (level "none").
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger("codereward.sandbox")

ROOT = Path("/sys/fs/cgroup")
MAX_FREE = 64  # emptied groups kept for reuse
# an emptied group is reused only while its leftover charges (page cache a program read,
# kernel objects) stay under this; above it they are dropped (force_empty, memory.reclaim)
# and a group that still holds more is removed: a job's limit is never eaten into by more
LEFTOVER_BYTES = 4 * 1024 * 1024
CPU_PERIOD_US = 100_000
_SERIAL = itertools.count()


def _own_path(controller: str) -> str | None:
    """This process's group path in the v1 hierarchy of `controller` ("" key: v2)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return None


def _write(path: Path, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


class Groups:
    """Creates, fills and removes the per-program groups of one executor."""

    def __init__(self, version: str, bases: dict[str, Path], cpus: float = 0.0) -> None:
        self.version = version  # "v1" or "v2"
        self.bases = bases  # controller ("memory", "pids", "cpu", or "" for v2) -> parent dir
        self.cpus = cpus  # CPU bandwidth per program; 0: CPU is not bounded by a group
        self._doomed: list[list[Path]] = []  # released, their processes maybe still dying
        self._free: list[list[Path]] = []  # emptied groups, reused (mkdir/rmdir are slow)
        self._oom0: dict[Path, int] = {}  # OOM kills a group had counted when attached
        # limits last written, per group: a reused group keeps them, rewritten only on change
        self._memory_mb: dict[Path, int] = {}
        self._pids: dict[Path, int] = {}
        self._no_reuse: set[Path] = set()
        self._lock = threading.Lock()

    @property
    def level(self) -> str:
        return f"cgroup-{self.version}"

    def attach(self, host_pid: int, memory_mb: int, pids: int, *,
               any_memory: bool = False) -> list[Path]:
        """Move `host_pid` into a fresh (or emptied, reused) group limited to `memory_mb`
        and `pids` processes. `any_memory`: a reused group keeps the memory limit it has (the
        caller sets the job's with set_memory before any program code runs)."""
        with self._lock:
            reused = self._free.pop() if self._free else None
        if reused is not None:
            try:
                if not any_memory:
                    self.set_memory(reused, memory_mb)
                for group in reused:
                    if self._pids.get(group) != pids and (
                            self.version == "v2" or group.parent == self.bases.get("pids")):
                        self._pids.pop(group, None)
                        _write(group / "pids.max", str(pids))
                        self._pids[group] = pids
                    _write(group / "cgroup.procs", str(host_pid))
            except OSError:
                self._discard(reused)
            else:
                self._note_oom(reused)
                return reused
        name = f"p{os.getpid()}-{next(_SERIAL)}"
        made: list[Path] = []
        try:
            for controller, base in self.bases.items():
                group = base / name
                group.mkdir()
                made.append(group)
                self._limit(controller, group, memory_mb, pids)
                _write(group / "cgroup.procs", str(host_pid))
        except OSError:
            self._discard(made)  # removed, never reused: its limits may be half written
            raise
        self._note_oom(made)
        return made

    def _note_oom(self, groups: list[Path]) -> None:
        for group in groups:
            self._oom0[group] = self._oom_count(group)

    def _discard(self, groups: list[Path]) -> None:
        self._forget(groups)
        self._no_reuse.update(groups)  # marked for removal, not reuse, before a sweep sees them
        with self._lock:
            self._doomed.append(list(groups))

    def _forget(self, groups: list[Path]) -> None:
        for group in groups:
            self._oom0.pop(group, None)
            self._memory_mb.pop(group, None)
            self._pids.pop(group, None)

    def _cpu_max(self) -> tuple[str, str]:
        return str(max(1000, round(self.cpus * CPU_PERIOD_US))), str(CPU_PERIOD_US)

    def _limit(self, controller: str, group: Path, memory_mb: int, pids: int) -> None:
        limit = str(memory_mb * 1024 * 1024)
        if controller == "cpu":  # v1; the same for every program, so set once per group
            quota, period = self._cpu_max()
            _write(group / "cpu.cfs_period_us", period)
            _write(group / "cpu.cfs_quota_us", quota)
            return
        if self.version == "v2" and self.cpus > 0:
            _write(group / "cpu.max", " ".join(self._cpu_max()))
        if self.version == "v2":
            _write(group / "memory.max", limit)
            with contextlib.suppress(OSError):  # one OOM kill takes the whole program
                _write(group / "memory.oom.group", "1")
            with contextlib.suppress(OSError):
                _write(group / "memory.swap.max", "0")
            _write(group / "pids.max", str(pids))
        elif controller == "memory":
            _write(group / "memory.limit_in_bytes", limit)
            with contextlib.suppress(OSError):  # absent without swap accounting
                _write(group / "memory.memsw.limit_in_bytes", limit)
            with contextlib.suppress(OSError):
                _write(group / "memory.swappiness", "0")
        else:
            _write(group / "pids.max", str(pids))
        # noted once written: a group whose write failed is never taken as having its limit
        if controller in ("memory", ""):
            self._memory_mb[group] = memory_mb
        if controller in ("pids", ""):
            self._pids[group] = pids

    def _memory_group(self, group: Path) -> bool:
        return self.version == "v2" or group.parent == self.bases.get("memory")

    def set_memory(self, groups: list[Path], memory_mb: int) -> None:
        """Set the memory limit of a program's groups (made with `attach`); a group that has
        it already is not written to."""
        limit = str(memory_mb * 1024 * 1024)
        for group in groups:
            if not self._memory_group(group) or self._memory_mb.get(group) == memory_mb:
                continue
            # unknown until written whole: a failed write leaves the group to be rewritten
            current = self._memory_mb.pop(group, None)
            if self.version == "v2":
                _write(group / "memory.max", limit)
            else:
                # memsw must stay >= the plain limit: raise in the order that keeps it so
                files = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
                now = (current * 1024 * 1024 if current is not None
                       else int((group / files[0]).read_text()))
                for name in (files[::-1] if memory_mb * 1024 * 1024 > now else files):
                    if "memsw" in name:
                        with contextlib.suppress(OSError):  # absent without swap accounting
                            _write(group / name, limit)
                    else:
                        _write(group / name, limit)
            self._memory_mb[group] = memory_mb

    def _oom_count(self, group: Path) -> int:
        """OOM kills a group has counted since it was made (v1: oom_control, v2: events;
        a v1 pids group counts none)."""
        if not self._memory_group(group):
            return 0
        try:
            text = (group / ("memory.events" if self.version == "v2"
                             else "memory.oom_control")).read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def oom_kills(self, groups: list[Path]) -> int:
        """How many processes the kernel OOM-killed in these groups since `attach`."""
        return sum(self._oom_count(g) - self._oom0.get(g, 0) for g in groups)

    def release(self, groups: list[Path]) -> None:
        """Remove the groups later (`sweep`, off the job path), once their killed processes
        are gone."""
        with self._lock:
            self._doomed.append(groups)

    def sweep(self) -> None:
        """Groups whose processes are all gone become reusable (their leftover page charges
        dropped first); the rest wait for the next sweep."""
        with self._lock:
            doomed, self._doomed = self._doomed, []
        left, free = [], []
        for groups in doomed:
            if not all(self._empty(g) for g in groups):
                left.append(groups)
            elif any(g in self._no_reuse for g in groups) or len(self._free) >= MAX_FREE:
                if not self._remove(groups):
                    left.append(groups)
                else:
                    self._no_reuse.difference_update(groups)
                    self._forget(groups)
            elif not all(self._little_left(g) for g in groups):
                self._no_reuse.update(groups)
                left.append(groups)  # removed at the next sweep
            else:
                free.append(groups)
        with self._lock:
            self._doomed.extend(left)
            self._free.extend(free)

    def _little_left(self, group: Path) -> bool:
        """Whether an emptied group holds at most LEFTOVER_BYTES of charges (dropped first
        when it holds more)."""
        if not self._memory_group(group):
            return True
        v2 = self.version == "v2"
        usage = group / ("memory.current" if v2 else "memory.usage_in_bytes")
        try:
            held = int(usage.read_text())
            if held <= LEFTOVER_BYTES:
                return True
            if v2:  # reclaim what it holds (the kernel takes what it can)
                _write(group / "memory.reclaim", str(held))
            else:
                _write(group / "memory.force_empty", "0")
            return int(usage.read_text()) <= LEFTOVER_BYTES
        except (OSError, ValueError):
            return False

    @staticmethod
    def _empty(group: Path) -> bool:
        try:
            return not (group / "cgroup.procs").read_text().strip()
        except FileNotFoundError:
            return True
        except OSError:
            return False

    @staticmethod
    def _remove(groups: list[Path]) -> bool:
        ok = True
        for group in groups:
            try:
                group.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                ok = False
        return ok

    def close(self) -> None:
        """Remove every group, waiting briefly for killed processes to be reaped."""
        for _ in range(50):
            with self._lock:
                doomed = self._doomed + self._free
                self._doomed, self._free = [], []
            left = [g for g in doomed if not self._remove(g)]
            with self._lock:
                self._doomed.extend(left)
            if not left:
                break
            time.sleep(0.02)
        for base in self.bases.values():
            with contextlib.suppress(OSError):
                base.rmdir()


_BASES = itertools.count()


def _make_base(parent: Path, serial: int) -> Path:
    """This executor's own parent group (one per executor: a process may run several)."""
    _remove_stale(parent)
    base = parent / f"codereward-{os.getpid()}-{serial}"
    base.mkdir(exist_ok=True)
    return base


def _remove_stale(parent: Path) -> None:
    """Empty groups left by executors whose process is gone (killed without closing)."""
    with contextlib.suppress(OSError):
        for old in parent.glob("codereward-*"):
            pid = old.name.split("-")[1]
            if not pid.isdigit() or Path(f"/proc/{pid}").exists():
                continue
            for group in old.iterdir():
                if group.is_dir():
                    with contextlib.suppress(OSError):
                        group.rmdir()
            with contextlib.suppress(OSError):
                old.rmdir()


def _v2(override: str | None, cpus: float) -> Groups | None:
    if not (ROOT / "cgroup.controllers").exists() and not override:
        return None
    parent = Path(override) if override else ROOT / (_own_path("") or "/").lstrip("/")
    try:
        controllers = (parent / "cgroup.controllers").read_text().split()
        if not {"memory", "pids"} <= set(controllers):
            return None
        if "cpu" not in controllers:
            cpus = 0.0
        enable = "+memory +pids" + (" +cpu" if cpus > 0 else "")
        _write(parent / "cgroup.subtree_control", enable)
        base = _make_base(parent, next(_BASES))
        _write(base / "cgroup.subtree_control", enable)
    except OSError:
        return None
    return Groups("v2", {"": base}, cpus)


def _v1(cpus: float) -> Groups | None:
    bases: dict[str, Path] = {}
    serial = next(_BASES)
    for controller in ("memory", "pids", "cpu") if cpus > 0 else ("memory", "pids"):
        own = _own_path(controller)
        root = ROOT / controller
        try:
            if own is None or not (root / "cgroup.procs").exists():
                raise OSError(f"no {controller} hierarchy")
            bases[controller] = _make_base(root / own.lstrip("/"), serial)
        except OSError:
            if controller == "cpu":  # optional: CPU stays bounded per process and test only
                cpus = 0.0
                continue
            for base in bases.values():
                with contextlib.suppress(OSError):
                    base.rmdir()
            return None
    return Groups("v1", bases, cpus)


def detect(override: str | None = None, cpus: float = 0.0) -> Groups | None:
    """Per-program groups this host lets us make, or None (then there is no aggregate bound).
    `cpus` > 0 asks for a CPU bandwidth per program too, where the cpu controller is ours
    (`Groups.cpus` says whether it was had: 0 when not)."""
    groups = _v2(override, cpus) or (None if override else _v1(cpus))
    if groups is None:
        return None
    # a host may let us mkdir but not limit or move: check once, with a throwaway process
    probe = subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    made: list[Path] = []
    try:
        made = groups.attach(probe.pid, 64, 16)
    except OSError as exc:
        groups.close()
        if groups.cpus > 0:  # the cpu controller may be the one that refuses: go without it
            log.warning("no CPU bound per program: the cpu controller refused",
                        extra={"reason": str(exc)})
            return detect(override, 0.0)
        log.warning("cgroups present but not usable", extra={"reason": str(exc)})
        return None
    finally:
        probe.kill()
        probe.wait()
        groups.release(made)
    return groups

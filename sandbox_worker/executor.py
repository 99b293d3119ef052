"""Executor: a pool of warm zygotes forking one isolated child per program (see isolation.py).

Threads call `run(job)`; each takes a pre-forked spare child (fork + namespace set-up already
done in the background, no interpreter start) and supervises it with `session.run_job`. At
most `workers` programs run at once. Levels: "namespaces" (user/pid/net/mount/ipc/uts
namespaces, read-only root, private tmpfs, unprivileged uid) or "none" (fork + rlimits +
scrubbed env + process group only); "auto" picks the strongest the host allows. "bwrap" is
accepted as a request for the namespace level: the same namespaces bubblewrap would make are
set up directly with unshare(2), once per zygote, instead of an exec of bwrap per program.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sandbox_worker import cgroups, languages, memwatch, session
from sandbox_worker.isolation import CLEAN_ENV, Limits
from sandbox_worker.kinds import builds, dispatch
from sandbox_worker.protocol import Job, JobResult, RunStatus

log = logging.getLogger("codereward.sandbox")

_ROOT = str(Path(__file__).resolve().parent.parent)
_BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
         "from sandbox_worker.zygote import main; main()")
NPROC = 256  # RLIMIT_NPROC per sandbox uid (per program when isolation.SANDBOX_UIDS are mapped)
FSIZE_MB = 64  # largest file and tmpfs size per program, MiB
NOFILE = 256  # open files per program
CPUS = 1.0  # CPU bandwidth per program (all its processes and threads), where a cgroup has one
HELLO_TIMEOUT_S = 30.0


SPARE_MEMORY_MB = 256  # a new spare group's limit; a job sets its own (set_memory) before code runs
OVER_MEMORY = "the program went over its memory limit (memory_mb, all its processes together)"


def job_memory_mb(job: Job) -> int:
    """A program's memory as a whole: its limit plus the runtime allowance of its language
    (JVM, V8, Go); a compile's child gets the compile's limit."""
    if builds.compiling():
        return builds.COMPILE_MEMORY_MB
    lang = languages.LANGUAGES.get(job.language)
    return job.memory_mb + (lang.extra_as_mb if lang is not None else 0)


def _kill_tree(pid: int) -> None:
    """SIGKILL a child by host pid: its pid namespace (or its process group) dies with it."""
    for kill in (os.kill, os.killpg):
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGKILL)


class SandboxUnavailable(RuntimeError):
    """The requested isolation level cannot be set up on this host."""


@functools.lru_cache(maxsize=16)
def _spawn_request(limits: Limits) -> bytes:
    """The fork request for `limits` (encoded once: every child of a pool asks the same)."""
    return json.dumps({"limits": limits.__dict__}).encode()


class _Zygote:
    """One zygote process and its control socket."""

    def __init__(self, level: str, disable: frozenset[str] = frozenset()) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = parent
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, _ROOT, str(child.fileno()), level,
             ",".join(sorted(disable))],
            pass_fds=[child.fileno()], env=dict(CLEAN_ENV),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd="/")
        child.close()
        parent.settimeout(HELLO_TIMEOUT_S)
        try:
            hello = json.loads(parent.recv(4096) or b'{"error": "zygote exited"}')
        except (OSError, ValueError) as exc:
            hello = {"error": f"no hello from zygote: {exc}"}
        parent.settimeout(None)
        if "error" in hello:
            self.close()
            raise SandboxUnavailable(str(hello["error"]))
        self.level: str = hello["level"]
        self.seccomp: bool = bool(hello.get("seccomp"))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, limits: Limits) -> session.Child:
        with self.lock:
            self.sock.send(_spawn_request(limits))
            msg, fds, _, _ = socket.recv_fds(self.sock, 4096, 3)
        if len(fds) != 3 or not msg:
            for fd in fds:
                os.close(fd)
            raise OSError("zygote did not answer")
        pid = int(json.loads(msg)["pid"])
        return session.Child(fds[0], fds[1], fds[2], pid, pgroup=self.level == "none")

    def close(self) -> None:
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _self_test(zygote: _Zygote) -> None:
    """Run one trivial program: a host that lets namespaces be made but not used fails here."""
    job = Job(code="def f():\n    return 1", tests=["assert f() == 1"], timeout_s=10.0,
              memory_mb=256)
    limits = Limits(nproc=NPROC, fsize_mb=FSIZE_MB, nofile=NOFILE)
    result = session.run_job(lambda: zygote.spawn(limits), job)
    if result.passed != 1:
        zygote.close()
        raise SandboxUnavailable(f"{zygote.level} self-test failed: {result.status.value} "
                                 f"{result.error or result.tests[0].error}")


class Executor:
    """Runs jobs in isolated children forked from warm zygotes; thread-safe."""

    def __init__(self, workers: int, *, isolation: str = "auto", nproc: int = NPROC,
                 fsize_mb: int = FSIZE_MB, nofile: int = NOFILE, memory_bound: str = "auto",
                 cgroup_path: str | None = None, disable: frozenset[str] = frozenset(),
                 cpus: float = CPUS) -> None:
        """`memory_bound`: how a program's memory is bounded as a whole (all its processes):
        "auto" (a cgroup when the host allows one, else the watcher), "cgroup" (required),
        "watch" (memwatch.py), "none" (RLIMIT_AS per process only). `disable`: layers to
        leave off, for measuring their cost ("seccomp", "netns": a network per program).
        `cpus`: CPU bandwidth of a program as a whole, with the memory cgroup (0: none)."""
        if not disable <= {"seccomp", "netns"}:
            raise ValueError(f"unknown layers {sorted(disable)}")
        self._disable = disable
        if memory_bound not in ("auto", "cgroup", "watch", "none"):
            raise ValueError(f"unknown memory bound {memory_bound!r}")
        self._bound_wanted, self._cgroup_path = memory_bound, cgroup_path
        if cpus < 0:
            raise ValueError(f"cpus must be >= 0, not {cpus}")
        self._cpus = cpus
        self._groups: cgroups.Groups | None = None
        self._watch: memwatch.MemoryWatch | None = None
        if isolation not in ("auto", "bwrap", "namespaces", "none"):
            raise ValueError(f"unknown isolation level {isolation!r}")
        self._workers = max(1, workers)
        self._requested = isolation
        self._slots = threading.BoundedSemaphore(self._workers)
        self._zygotes: list[_Zygote] = []
        self._next = 0
        self._lock = threading.Lock()
        self._level = "none"
        self._closed = False
        self._limits = Limits(nproc=nproc, fsize_mb=fsize_mb, nofile=nofile)
        self._spares: queue.Queue[session.Child] = queue.Queue()
        self._wake = threading.Event()
        self._refiller: threading.Thread | None = None

    @property
    def isolation(self) -> str:
        """Isolation level in force: "namespaces" or "none"."""
        return self._level

    @property
    def memory_bound(self) -> str:
        """How a program's total memory is bounded: "cgroup-v1", "cgroup-v2", "watch" (the
        fallback watcher) or "rlimit" (per process only)."""
        if self._groups is not None:
            return self._groups.level
        return "watch" if self._watch is not None else "rlimit"

    @property
    def cpu_bound(self) -> str:
        """How a program's CPU is bounded as a whole: "N cpu" (a cgroup's bandwidth) or
        "rlimit" (RLIMIT_CPU per process and the deadlines only)."""
        if self._groups is not None and self._groups.cpus > 0:
            return f"{self._groups.cpus:g} cpu"
        return "rlimit"

    def _start_memory_bound(self) -> None:
        if self._bound_wanted in ("auto", "cgroup"):
            self._groups = cgroups.detect(self._cgroup_path, self._cpus)
            if self._groups is None and self._bound_wanted == "cgroup":
                raise SandboxUnavailable("no usable cgroup for per-program limits")
        if self._groups is None and self._bound_wanted in ("auto", "watch"):
            self._watch = memwatch.MemoryWatch()

    def _bounded(self, job: Job, held: list[Any]) -> session.Child:
        """A fresh child, its memory bounded as a whole at the job's limit."""
        child = self._spawn()
        pid = child.clock.pid
        if pid is None:
            return child
        limit_mb = job_memory_mb(job)
        try:
            if self._groups is not None:
                held.append(child.groups)
                self._groups.set_memory(child.groups, limit_mb)
            elif self._watch is not None:
                held.append(self._watch.watch(pid, limit_mb * 1024 * 1024,
                                              functools.partial(_kill_tree, pid)))
        except OSError:
            child.kill()
            raise
        return child

    def _release(self, held: list[Any]) -> bool:
        """Release the job's groups or watches; True when the program went over its memory
        limit (the kernel or the watcher killed part of it)."""
        over = False
        for item in held:
            if self._groups is not None:
                over = self._groups.oom_kills(item) > 0 or over
                self._groups.release(item)
            elif self._watch is not None:
                over = self._watch.unwatch(item) or over
        return over

    @property
    def seccomp(self) -> bool:
        """Whether every child runs under the seccomp deny list (seccomp.py)."""
        return bool(self._zygotes) and all(z.seccomp for z in self._zygotes)

    def start(self) -> None:
        """Start the zygotes, detecting the strongest isolation the host allows."""
        n = 1 + (self._workers - 1) // 8  # one zygote forks ~500 children/s
        want = "none" if self._requested == "none" else "namespaces"
        try:
            first = _Zygote(want, self._disable)
            _self_test(first)
        except SandboxUnavailable as exc:
            if self._requested != "auto":
                raise
            log.warning("namespace isolation unavailable, running unisolated",
                        extra={"reason": str(exc)})
            first = _Zygote("none")
        self._zygotes = [first] + [_Zygote(first.level, self._disable) for _ in range(n - 1)]
        self._level = first.level
        self._start_memory_bound()
        # toolchain versions, probed once off the job path (GET /languages, compile keys)
        threading.Thread(target=languages.available, name="toolchain-probe", daemon=True).start()
        self._refiller = threading.Thread(target=self._refill, name="sandbox-spares",
                                          daemon=True)
        self._refiller.start()
        self._wake.set()
        log.info("sandbox executor started",
                 extra={"isolation": self._level, "seccomp": self.seccomp,
                        "memory_bound": self.memory_bound, "cpu_bound": self.cpu_bound,
                        "workers": self._workers, "zygotes": n})

    def healthy(self) -> bool:
        """True when started, not closed, and every zygote is alive (dead ones are replaced)."""
        if self._closed or not self._zygotes:
            return False
        with self._lock:
            for i, z in enumerate(self._zygotes):
                if not z.alive():
                    self._zygotes[i] = self._replace(z)
        return all(z.alive() for z in self._zygotes)

    def _replace(self, dead: _Zygote) -> _Zygote:
        log.warning("zygote died; starting a new one", extra={"exit": dead.proc.poll()})
        dead.close()
        return _Zygote(self._level, self._disable)

    def _fork_child(self) -> session.Child:
        with self._lock:
            index = self._next % len(self._zygotes)
            self._next += 1
            zygote = self._zygotes[index]
        try:
            child = zygote.spawn(self._limits)
        except OSError:
            with self._lock:
                if self._zygotes[index] is zygote:
                    self._zygotes[index] = self._replace(zygote)
                zygote = self._zygotes[index]
            child = zygote.spawn(self._limits)
        if self._groups is not None and child.clock.pid is not None:
            # its group is made here (mostly in the refill thread, off the job path); a job
            # only sets its limit
            try:
                child.groups = self._groups.attach(child.clock.pid, SPARE_MEMORY_MB,
                                                   self._limits.nproc, any_memory=True)
            except OSError:
                child.kill()
                raise
        return child

    def _spawn(self) -> session.Child:
        """A fresh child: a pre-forked spare when one is ready (hides fork + set-up)."""
        self._wake.set()
        while True:
            try:
                child = self._spares.get_nowait()
            except queue.Empty:
                return self._fork_child()
            if not child.exited():
                return child
            self._drop(child)  # its zygote died since: just close it

    def _refill(self) -> None:
        """Keep `workers` spare children forked and waiting (background thread)."""
        while not self._closed:
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._groups is not None:
                self._groups.sweep()  # groups whose killed processes were still exiting
            while not self._closed and self._spares.qsize() < self._workers:
                try:
                    child = self._fork_child()
                except Exception:
                    log.exception("could not fork a spare child")
                    break
                self._spares.put(child)
        self._drain_spares()

    def _drop(self, child: session.Child) -> None:
        """Kill a child no job took, and give back its groups."""
        child.kill()
        if self._groups is not None and child.groups:
            self._groups.release(child.groups)

    def _drain_spares(self) -> None:
        while True:
            try:
                self._drop(self._spares.get_nowait())
            except queue.Empty:
                return

    def run(self, job: Job) -> JobResult:
        """Run one job (blocking). Never raises for anything the program does."""
        if self._closed or not self._zygotes:
            raise RuntimeError("executor is not running")
        with self._slots:
            held: list[Any] = []
            spawn = (self._spawn if self._groups is None and self._watch is None
                     else functools.partial(self._bounded, job, held))
            try:
                if job.kind == "asserts" and job.language == "python":
                    result = session.run_job(spawn, job)
                else:
                    result = dispatch.run_job(spawn, job)
            except Exception:
                log.exception("sandbox failure")
                result = JobResult.unrun(RunStatus.KILLED, job.n_tests(), "sandbox failure")
            if self._release(held):  # a program over its limit as a whole gains nothing
                return JobResult.unrun(RunStatus.KILLED, job.n_tests(), OVER_MEMORY)
            return result

    def close(self) -> None:
        """Stop the zygotes; every running child dies with its zygote."""
        self._closed = True
        self._wake.set()
        if self._refiller is not None:
            self._refiller.join(timeout=5)
        self._drain_spares()
        with self._lock:
            for z in self._zygotes:
                z.close()
            self._zygotes = []
        if self._groups is not None:
            self._groups.close()
        if self._watch is not None:
            self._watch.close()

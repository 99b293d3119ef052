"""The zygote: a warm, isolated parent that forks one sandboxed child per program.

Started once per pool slot with a scrubbed environment, it never runs untrusted code and never
sees program code or tests: it only forks children on request and hands their pipe ends (and a
pidfd to kill them) back to the executor over a SOCK_SEQPACKET socket.
"""

from __future__ import annotations

# Pre-imported so children start warm: the harness and what programs import most.
import bisect  # noqa: F401
import collections  # noqa: F401
import dataclasses  # noqa: F401
import functools  # noqa: F401
import gc
import heapq  # noqa: F401
import itertools  # noqa: F401
import json
import math  # noqa: F401
import os
import re  # noqa: F401
import select
import shutil
import signal
import socket
import string  # noqa: F401
import sys
import tempfile
import typing  # noqa: F401
from pathlib import Path
from typing import Any

from sandbox_worker import harness, isolation, seccomp

_REPO = Path(__file__).resolve().parent.parent


class _Zygote:
    def __init__(self, sock: socket.socket, level: str, uids: int,
                 disable: frozenset[str] = frozenset()) -> None:
        self.sock, self.level, self.uids = sock, level, uids
        self.netns = "netns" not in disable
        self.serial = 0  # children forked so far: picks each one's uid in turn
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY) if level != "none" else -1
        self.tmpdirs: dict[int, str] = {}
        self.seccomp = level != "none" and "seccomp" not in disable and seccomp.supported()

    def reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            tmp = self.tmpdirs.pop(pid, None)
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)

    def spawn(self, limits: isolation.Limits) -> None:
        self.serial += 1
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        tmp = tempfile.mkdtemp(prefix="cr-") if self.level == "none" else None
        if self.level != "none":
            isolation.unshare(isolation.CLONE_NEWPID)  # the child is pid 1 of a fresh pid ns
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                self._child(req_r, resp_w, limits, tmp)
                code = 0
            finally:
                os._exit(code)
        if self.level != "none":
            isolation.setns(self.own_pidns, isolation.CLONE_NEWPID)
        if tmp:
            self.tmpdirs[pid] = tmp
        os.close(req_r)
        os.close(resp_w)
        pidfd = os.pidfd_open(pid)
        try:
            socket.send_fds(self.sock, [b'{"pid": %d}' % pid],
                            [req_w, resp_r, pidfd])
        finally:
            for fd in (req_w, resp_r, pidfd):
                os.close(fd)

    def _child(self, rfd: int, wfd: int, limits: isolation.Limits, tmp: str | None) -> None:
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()  # SIGTERM is at its default already: set in main(), inherited
        if self.level != "none":
            isolation.private_mounts(limits, netns=self.netns)
        isolation.keep_only_fds((rfd, wfd))  # the environment was scrubbed once, in main()
        os.chdir(tmp or "/tmp")
        if tmp:
            os.environ["TMPDIR"] = os.environ["HOME"] = tmp
        isolation.set_limits(limits)
        sys.argv = [""]  # the program sees neither our arguments nor our source tree
        sys.path[:] = [p for p in sys.path if p != str(_REPO)]
        if self.level != "none":
            uid = isolation.SANDBOX_UID + self.serial % self.uids if self.uids else None
            isolation.drop_privileges(uid)
            if self.seccomp:
                seccomp.install()  # after no_new_privs, before any program code
        harness.serve(rfd, wfd)

    def serve(self) -> None:
        last: tuple[bytes, isolation.Limits] | None = None  # requests repeat: parse once
        while True:
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            self.reap()
            if not ready:
                continue
            data = self.sock.recv(4096)
            if not data:
                return
            if last is None or last[0] != data:
                req: dict[str, Any] = json.loads(data)
                last = data, isolation.Limits(**req["limits"])
            self.spawn(last[1])


def _setup(level: str) -> tuple[str, int]:
    """Enter the isolation `level` asks for; returns the level reached and the sandbox uids."""
    if level == "none":
        return "none", 0
    uids = isolation.enter_namespaces()
    pid = os.fork()  # the first child is pid 1 of the new pid namespace
    if pid != 0:
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    isolation.build_root("/tmp", _REPO)  # a tmpfs over /tmp, in our private mount ns only
    return "namespaces", uids


def main() -> None:
    """Entry point: `python -I -c ... <ctrl fd> <level>`; answers one hello frame, then serves."""
    fd, level = int(sys.argv[1]), sys.argv[2]
    disable = frozenset(filter(None, sys.argv[3].split(","))) if len(sys.argv) > 3 else frozenset()
    sock = socket.socket(fileno=fd)
    try:
        reached, uids = _setup(level)
    except OSError as exc:
        sock.send(json.dumps({"error": f"{level}: {exc}"}).encode())
        return
    zygote = _Zygote(sock, reached, uids, disable)
    sock.send(json.dumps({"level": reached, "uids": uids, "seccomp": zygote.seccomp}).encode())
    # once here, not per child: every child inherits it, and each write a child makes to
    # inherited memory costs a page copy (os.environ.clear() in a child: ~90 page faults)
    isolation.scrub_environment()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    harness.hide_later(m for m in sys.modules if m.split(".")[0] == "sandbox_worker")
    # children inherit every object copy-on-write: frozen, the collector in a child never
    # walks (and so never copies) the pages of what the zygote imported
    gc.collect()
    gc.freeze()
    zygote.serve()

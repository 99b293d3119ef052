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


class _NetPool:
    """Network namespaces lent to children, one per live child, reused once it is reaped.

    A fresh netns per child costs the kernel ~0.5 ms to make and more to tear down (measured:
    fork + unshare(CLONE_NEWNET) 1.40 ms against 0.95 ms for a fork that joins a pooled one).
    A namespace goes back to the pool only when the child that held it has been reaped, and so
    every process of its pid namespace is gone with their sockets, and only when it holds no
    socket at all (its /proc/net/sockstat counts none: a unix socket kept alive in flight by
    SCM_RIGHTS until the kernel's collector runs would otherwise outlive its program; the
    per-socket tables /proc/net/tcp* walk the host-wide hash, 3.4 ms each here); else it is
    closed, and freed by the kernel. No interface is ever up in any of them (programs have no
    CAP_NET_ADMIN), so no traffic leaves or enters one.
    """

    MAX_FREE = 64

    def __init__(self) -> None:
        self.own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        self.free: list[int] = []
        self.lent: dict[int, int] = {}  # child pid -> netns fd

    def take(self) -> int:
        if self.free:
            return self.free.pop()
        isolation.unshare(isolation.CLONE_NEWNET)
        try:
            return os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        finally:
            isolation.setns(self.own, isolation.CLONE_NEWNET)

    def lend(self, fd: int, pid: int) -> None:
        self.lent[pid] = fd

    def give_back(self, pid: int) -> None:
        fd = self.lent.pop(pid, -1)
        if fd < 0:
            return
        if len(self.free) < self.MAX_FREE and self._empty(fd):
            self.free.append(fd)
        else:
            os.close(fd)

    def _empty(self, fd: int) -> bool:
        """Whether the netns `fd` holds no socket (entered briefly to read its sockstat)."""
        try:
            isolation.setns(fd, isolation.CLONE_NEWNET)
        except OSError:
            return False
        try:
            with open("/proc/thread-self/net/sockstat", "rb") as fh:
                return _no_sockets(fh.read())
        except (OSError, ValueError):
            return False
        finally:
            isolation.setns(self.own, isolation.CLONE_NEWNET)


def _no_sockets(sockstat: bytes) -> bool:
    """Whether a netns's /proc/net/sockstat counts no socket: `sockets: used` (every family,
    unix ones too, this netns only), and no TCP/UDP/RAW socket in use or in TIME_WAIT."""
    fields: dict[bytes, int] = {}
    for line in sockstat.splitlines():
        proto, _, rest = line.partition(b":")
        words = rest.split()
        for key, value in zip(words[::2], words[1::2], strict=False):
            fields[proto + b"." + key] = int(value)
    counted = (b"sockets.used", b"TCP.inuse", b"TCP.tw", b"UDP.inuse", b"RAW.inuse")
    return all(fields.get(key, 1) == 0 for key in counted)


class _Zygote:
    def __init__(self, sock: socket.socket, level: str, uids: int,
                 disable: frozenset[str] = frozenset()) -> None:
        self.sock, self.level, self.uids = sock, level, uids
        self.nets = _NetPool() if level != "none" and "netns" not in disable else None
        self.serial = 0  # children forked so far: picks each one's uid in turn
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY) if level != "none" else -1
        self.tmpdirs: dict[int, str] = {}
        self.seccomp = level != "none" and "seccomp" not in disable and seccomp.supported()
        if self.seccomp:
            seccomp.prepare()  # built here once: children only install it

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
            if self.nets is not None:
                self.nets.give_back(pid)

    def spawn(self, limits: isolation.Limits) -> None:
        self.serial += 1
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        tmp = tempfile.mkdtemp(prefix="cr-") if self.level == "none" else None
        net = self.nets.take() if self.nets is not None else -1
        if self.level != "none":
            isolation.unshare(isolation.CLONE_NEWPID)  # the child is pid 1 of a fresh pid ns
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                self._child(req_r, resp_w, limits, tmp, net)
                code = 0
            finally:
                os._exit(code)
        if self.level != "none":
            isolation.setns(self.own_pidns, isolation.CLONE_NEWPID)
        if tmp:
            self.tmpdirs[pid] = tmp
        if self.nets is not None:
            self.nets.lend(net, pid)
        os.close(req_r)
        os.close(resp_w)
        pidfd = os.pidfd_open(pid)
        try:
            socket.send_fds(self.sock, [b'{"pid": %d}' % pid],
                            [req_w, resp_r, pidfd])
        finally:
            for fd in (req_w, resp_r, pidfd):
                os.close(fd)

    def _child(self, rfd: int, wfd: int, limits: isolation.Limits, tmp: str | None,
               net: int) -> None:
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()  # SIGTERM is at its default already: set in main(), inherited
        if self.level != "none":
            isolation.private_mounts(limits, net_fd=net)
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

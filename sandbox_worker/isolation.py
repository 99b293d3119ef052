"""Linux isolation primitives (ctypes over libc): namespaces, mounts, rlimits, privilege drop.

Model ("namespaces" level). The zygote enters new user, mount, net, ipc, uts and pid namespaces
once, builds a read-only root (system dirs and the Python installation only, no service files)
and becomes pid 1 of its pid namespace. Per program, the zygote forks a child into a *fresh*
pid namespace; the child takes fresh mount and ipc namespaces with private tmpfs /tmp,
/dev/shm and its own /proc, lowers rlimits, scrubs its environment, closes every fd but its
two pipes and drops to an unprivileged uid with no capabilities and no_new_privs. Children take
turns over SANDBOX_UIDS host uids (61000.., else 65534 alone), so RLIMIT_NPROC, which counts
per uid, keeps one program's fork bomb from starving the programs running beside it.
Each live program has a network namespace of its own (no interface up), lent from the
zygote's pool (zygote._NetPool): concurrent programs cannot reach each other over abstract
unix sockets or ports. Memory is bounded per process by RLIMIT_AS here and per program as a
whole by cgroups.py (or memwatch.py); system calls by seccomp.py.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
SANDBOX_UID = 1000  # first uid inside the namespace that programs run as
SANDBOX_UIDS = 64  # uids programs take turns over (> programs one zygote runs at once)
HOST_UID_BASE = 61000  # host uids they map to (unused range); else all map to HOST_NOBODY
HOST_NOBODY = 65534
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
DEVICES = ("null", "zero", "full", "random", "urandom")
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
             "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    """unshare(2)."""
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    """setns(2)."""
    _check(_libc.setns(fd, nstype), "setns")


def mount(src: str | None, dst: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    """mount(2)."""
    def enc(s: str | None) -> bytes | None:
        return None if s is None else s.encode()

    _check(_libc.mount(enc(src), dst.encode(), enc(fstype), flags, enc(data)), f"mount {dst}")


def prctl(option: int, arg: int) -> None:
    """prctl(2) with one argument."""
    _check(_libc.prctl(option, arg, 0, 0, 0), "prctl")


def _machine() -> str:
    return os.uname().machine


def drop_capabilities() -> None:
    """Empty every capability set of this thread (capset v3)."""
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(_SYS_CAPSET[_machine()], header, data), "capset")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enter_namespaces() -> int:
    """Enter new user/mount/net/ipc/uts/pid namespaces; returns how many sandbox uids exist.

    A helper forked beforehand stays outside and writes the maps; that needs CAP_SETUID on the
    host (root, as in a container): SANDBOX_UIDS uids, or one when the host refuses the range.
    Otherwise (0) only our own uid is mapped and programs run as that uid with every
    capability dropped.
    """
    uid, gid = os.getuid(), os.getgid()
    r, w = os.pipe()
    helper = os.fork()
    if helper == 0:  # pragma: no cover - runs in the forked helper
        code = 0  # exit code: how many sandbox uids were mapped
        try:
            os.close(w)
            if os.read(r, 1) == b"x":
                code = _map_sandbox_uids(os.getppid(), uid, gid)
        finally:
            os._exit(code)
    os.close(r)
    try:
        unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
                | CLONE_NEWPID)
    except OSError:
        os.close(w)
        os.waitpid(helper, 0)
        raise
    os.write(w, b"x")
    os.close(w)
    _, status = os.waitpid(helper, 0)
    uids = os.waitstatus_to_exitcode(status)
    if uids > 0:
        return uids
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1\n")
    _write("/proc/self/gid_map", f"0 {gid} 1\n")
    return 0


def _map_sandbox_uids(pid: int, uid: int, gid: int) -> int:
    """Write the id maps of `pid` (our uid as 0, plus sandbox uids); returns how many."""
    for n, host in ((SANDBOX_UIDS, HOST_UID_BASE), (1, HOST_NOBODY)):
        try:  # a refused write leaves the map unset, so the narrower one can follow
            _write(f"/proc/{pid}/uid_map", f"0 {uid} 1\n{SANDBOX_UID} {host} {n}\n")
        except OSError:
            continue
        try:
            _write(f"/proc/{pid}/gid_map", f"0 {gid} 1\n{SANDBOX_UID} {HOST_NOBODY} 1\n")
        except OSError:
            return 0
        return n
    return 0


# Python installations under /tmp, as (second view in the root, real path): set in the zygote
# by build_root, inherited by every forked child, re-bound over its private /tmp.
_PY_STASH = "/.python"
_TMP_PYTHON_DIRS: list[tuple[str, str]] = []


def _bind_ro(src: str, dst: str) -> None:
    mount(src, dst, None, MS_BIND | MS_REC)
    mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _python_dirs(hidden: Path) -> list[str]:
    """Installation dirs programs need (stdlib, site-packages), never the service's own tree."""
    out: list[str] = []
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        p = Path(prefix).resolve()
        if any(p == Path("/", d) or Path("/", d) in p.parents for d in SYSTEM_DIRS):
            continue
        if p == hidden or p in hidden.parents:  # the prefix holds the service: expose lib only
            p = p / "lib"
        out.append(str(p))
    return sorted(set(out))


def build_root(root: str, hidden: Path) -> None:
    """Read-only root at `root`, pivot into it; `hidden` (the service tree) stays invisible."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    # hold the installation dirs open first: the tmpfs below may cover them (the root is built
    # on /tmp, and a venv may live in a checkout under /tmp); bind from the held fds
    held = {src: os.open(src, os.O_PATH | os.O_DIRECTORY)
            for src in _python_dirs(hidden) if os.path.isdir(src)}
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
    for d in SYSTEM_DIRS:
        src = "/" + d
        if os.path.islink(src):
            os.symlink(os.readlink(src), f"{root}/{d}")
        elif os.path.isdir(src):
            os.mkdir(f"{root}/{d}")
            _bind_ro(src, f"{root}/{d}")
    for src, fd in held.items():
        view = f"/proc/self/fd/{fd}"
        os.makedirs(root + src, exist_ok=True)
        _bind_ro(view, root + src)
        if Path(src).is_relative_to("/tmp"):
            # each program gets a fresh tmpfs on /tmp, which would hide this installation:
            # keep a second view to bind back in every child (private_mounts)
            stash = f"{_PY_STASH}/{len(_TMP_PYTHON_DIRS)}"
            os.makedirs(root + stash)
            _bind_ro(view, root + stash)
            _TMP_PYTHON_DIRS.append((stash, src))
        os.close(fd)
    for d in ("proc", "tmp", "dev", ".old"):
        os.makedirs(f"{root}/{d}", exist_ok=True)
    mount("tmpfs", f"{root}/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for dev in DEVICES:
        open(f"{root}/dev/{dev}", "w").close()
        mount(f"/dev/{dev}", f"{root}/dev/{dev}", None, MS_BIND)
    os.mkdir(f"{root}/dev/shm")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _check(_libc.syscall(_SYS_PIVOT_ROOT[_machine()], root.encode(), f"{root}/.old".encode()),
           "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old", MNT_DETACH), "umount old root")
    os.rmdir("/.old")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4m,mode=0755")


@dataclass(frozen=True)
class Limits:
    """Resource limits fixed when a child is forked (before any job is known)."""

    nproc: int  # RLIMIT_NPROC: processes + threads of the sandbox uid
    fsize_mb: int  # RLIMIT_FSIZE and the tmpfs size, MiB
    nofile: int  # RLIMIT_NOFILE


def private_mounts(limits: Limits, *, net_fd: int = -1) -> None:
    """Fresh mount and ipc namespaces: private tmpfs /tmp, /dev/shm, SysV IPC, own /proc; and
    the network namespace `net_fd` (>= 0), no other live program's (no interface up; abstract
    unix sockets and loopback ports of other programs are out of reach)."""
    unshare(CLONE_NEWNS | CLONE_NEWIPC)
    if net_fd >= 0:
        setns(net_fd, CLONE_NEWNET)
    opts = f"size={limits.fsize_mb}m,mode=1777"
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts)
    for stash, path in _TMP_PYTHON_DIRS:  # an installation under /tmp stays importable
        os.makedirs(path, exist_ok=True)
        _bind_ro(stash, path)
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts)
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:  # some hosts forbid a new proc: then none at all, never the zygote's
        mount("tmpfs", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555")


def set_limits(limits: Limits) -> None:
    """Lower soft and hard rlimits for this process and its descendants."""
    for res, value in ((resource.RLIMIT_NPROC, limits.nproc),
                       (resource.RLIMIT_FSIZE, limits.fsize_mb * 1024 * 1024),
                       (resource.RLIMIT_NOFILE, limits.nofile),
                       (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(res, (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the cap fail with EFBIG


def set_job_limits(memory_mb: int, cpu_s: int) -> None:
    """Address space (MiB) and CPU seconds of one job; lowering needs no privilege."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))


def drop_privileges(uid: int | None) -> None:
    """Become the unprivileged `uid` (None: uid 0 with no capabilities); no_new_privs always."""
    if uid is not None:
        os.setgroups([])
        os.setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
        os.setresuid(uid, uid, uid)
    else:
        drop_capabilities()
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def scrub_environment() -> None:
    """Replace the environment with a minimal fixed one (no keys, tokens or service paths)."""
    os.environ.clear()
    os.environ.update(CLEAN_ENV)


def keep_only_fds(keep: tuple[int, ...]) -> None:
    """Close every fd except `keep`; 0, 1, 2 become /dev/null."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    lo = 3
    for fd in sorted(keep):
        os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 1 << 20)

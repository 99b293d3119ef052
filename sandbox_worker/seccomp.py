"""A seccomp-bpf deny list for sandboxed children, built with the stdlib (no libseccomp).

Installed in each child after it dropped its privileges (no_new_privs is set) and before the
program loads. A denied call fails with EPERM; everything else is allowed, as in Docker's
default profile. The list follows Docker's default profile and nsjail's defaults: new
namespaces (unshare, setns, clone with CLONE_NEW* flags), mounts and the new mount API,
pivot_root and chroot, keyrings, bpf, ptrace and cross-process memory access (kcmp,
process_vm_*), perf_event_open, userfaultfd, io_uring, fanotify, file handles, kernel
modules and kexec, reboot, swap, quotas, accounting, clock and host-name changes, syslog.
clone3 answers ENOSYS (its flags live in memory a filter cannot read), so libc falls back
to clone, whose flags are checked. Calls of another ABI (x32) are refused.

Only x86_64 has its table here; on other machines `supported()` is False and the executor
says so (README "The sandbox: isolation model and its limits").
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import struct

PR_SET_SECCOMP = 22
PR_GET_SECCOMP = 21
SECCOMP_MODE_FILTER = 2
AUDIT_ARCH_X86_64 = 0xC000003E
X32_BIT = 0x40000000

_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_LD_W_ABS, _JEQ_K, _JSET_K, _JGE_K, _RET_K = 0x20, 0x15, 0x45, 0x35, 0x06

CLONE_NEW_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
                   | 0x20000000 | 0x40000000 | 0x00000080)  # NS CGROUP UTS IPC USER PID NET TIME

DENIED_X86_64 = {
    "ptrace": 101, "syslog": 103, "uselib": 134, "vhangup": 153, "pivot_root": 155,
    "_sysctl": 156, "adjtimex": 159, "chroot": 161, "acct": 163, "settimeofday": 164,
    "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169,
    "sethostname": 170, "setdomainname": 171, "iopl": 172, "ioperm": 173,
    "create_module": 174, "init_module": 175, "delete_module": 176, "get_kernel_syms": 177,
    "query_module": 178, "quotactl": 179, "nfsservctl": 180, "lookup_dcookie": 212,
    "clock_settime": 227, "kexec_load": 246, "add_key": 248, "request_key": 249,
    "keyctl": 250, "unshare": 272, "move_pages": 279, "perf_event_open": 298,
    "fanotify_init": 300, "name_to_handle_at": 303, "open_by_handle_at": 304,
    "clock_adjtime": 305, "setns": 308, "process_vm_readv": 310, "process_vm_writev": 311,
    "kcmp": 312, "finit_module": 313, "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442, "quotactl_fd": 443, "memfd_secret": 447,
}
NR_CLONE, NR_CLONE3 = 56, 435


def _stmt(code: int, k: int) -> bytes:
    return struct.pack("HBBI", code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def program() -> bytes:
    """The filter, as packed `struct sock_filter` entries (x86_64)."""
    eperm = _RET_ERRNO | errno.EPERM
    ins = [_stmt(_LD_W_ABS, 4),  # seccomp_data.arch
           _jump(_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
           _stmt(_RET_K, _RET_KILL_PROCESS),
           _stmt(_LD_W_ABS, 0),  # seccomp_data.nr
           _jump(_JGE_K, X32_BIT, 0, 1),
           _stmt(_RET_K, eperm)]
    for nr in sorted(DENIED_X86_64.values()):
        ins += [_jump(_JEQ_K, nr, 0, 1), _stmt(_RET_K, eperm)]
    ins += [_jump(_JEQ_K, NR_CLONE3, 0, 1), _stmt(_RET_K, _RET_ERRNO | errno.ENOSYS),
            _jump(_JEQ_K, NR_CLONE, 0, 3),
            _stmt(_LD_W_ABS, 16),  # args[0], low 32 bits: the clone flags
            _jump(_JSET_K, CLONE_NEW_FLAGS, 0, 1),
            _stmt(_RET_K, eperm),
            _stmt(_RET_K, _RET_ALLOW)]
    return b"".join(ins)


_libc = ctypes.CDLL(None, use_errno=True)


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def supported() -> bool:
    """Whether this machine can take the filter (x86_64 and a kernel with seccomp filters)."""
    if os.uname().machine != "x86_64":
        return False
    return bool(_libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0)


@functools.cache
def _fprog() -> tuple[_Fprog, ctypes.Array[ctypes.c_char]]:
    """The filter as the kernel takes it, built once (a zygote builds it before it forks, so
    each child only makes the call); the buffer is returned to keep it alive."""
    code = program()
    buf = ctypes.create_string_buffer(code, len(code))
    return _Fprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p)), buf


def prepare() -> None:
    """Build the filter now (before forking children that install it)."""
    _fprog()


def install() -> None:
    """Install the filter on this thread's process (needs no_new_privs); raises OSError."""
    prog, _ = _fprog()
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: {os.strerror(err)}")

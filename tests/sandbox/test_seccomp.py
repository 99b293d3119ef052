"""The seccomp deny list in real sandboxed children: every listed syscall fails with EPERM
(generated from the table, not hand-picked), clone3 with ENOSYS, and honest code still runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from sandbox_worker import seccomp
from sandbox_worker.executor import Executor
from sandbox_worker.protocol import JobResult

SYSCALL = """
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return r, ctypes.get_errno()
"""


@pytest.fixture
def filtered(isolated: Executor) -> Executor:
    if not isolated.seccomp:
        pytest.skip("no seccomp filter on this machine (not x86_64, or no seccomp)")
    return isolated


def test_children_run_under_the_filter(filtered: Executor,
                                       run: Callable[..., JobResult]) -> None:
    code = "def mode():\n    return [l.split()[1] for l in open('/proc/self/status')" \
           " if l.startswith('Seccomp:')][0]"
    assert run(code, ["assert mode() == '2'"]).passed == 1


def test_every_denied_syscall_fails_with_eperm(filtered: Executor,
                                               run: Callable[..., JobResult]) -> None:
    table = dict(seccomp.DENIED_X86_64)
    code = SYSCALL + f"TABLE = {table!r}\n" + (
        "def leaks():\n    return {name: call(nr, 0, 0, 0, 0, 0, 0) for name, nr in TABLE.items()\n"
        "            if call(nr, 0, 0, 0, 0, 0, 0) != (-1, errno.EPERM)}")
    result = run(code, ["assert leaks() == {}"])
    assert result.passed == 1, result.tests[0].error


def test_namespaces_io_uring_and_keys_are_refused_here_but_work_on_the_host(
        filtered: Executor, run: Callable[..., JobResult]) -> None:
    probes = SYSCALL + (
        "def probe():\n"
        "    params = ctypes.create_string_buffer(120)\n"
        "    return {'unshare': call(272, 0x10000000)[1], 'clone': call(56, 0x10000000 | 17)[1],\n"
        "            'io_uring': call(425, 1, ctypes.addressof(params))[1],\n"
        "            'keyctl': call(250, 0, -1, 0)[1], 'clone3': call(435, 0, 0)[1],\n"
        "            'x32 getpid': call(0x40000000 + 39)[1]}\n")
    result = run(probes, ["assert probe() == {'unshare': 1, 'clone': 1, 'io_uring': 1, "
                          "'keyctl': 1, 'clone3': 38, 'x32 getpid': 1}"])
    assert result.passed == 1, result.tests[0].error
    # the same calls outside the filter (a plain subprocess here): not EPERM, so the
    # refusal above is the filter's
    host = subprocess.run([sys.executable, "-c", probes + "print(probe())"],
                          capture_output=True, text=True, check=True).stdout
    seen = eval(host)  # our own subprocess's dict literal
    assert seen["io_uring"] != 1 and seen["keyctl"] != 1 and seen["clone3"] != 38


def test_honest_code_keeps_working(filtered: Executor, run: Callable[..., JobResult]) -> None:
    code = ("import subprocess, sys, threading\n"
            "def honest():\n"
            "    out = []\n"
            "    th = threading.Thread(target=lambda: out.append(1))\n"
            "    th.start(); th.join()\n"
            "    p = subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True,"
            " text=True)\n"
            "    import numpy\n"
            "    return out == [1] and p.stdout.strip() == '42' and int(numpy.arange(4).sum()) == 6")
    assert run(code, ["assert honest() == True"], timeout_s=20.0, memory_mb=1024).passed == 1


def test_program_shape() -> None:
    code = seccomp.program()
    assert len(code) % 8 == 0
    n = len(code) // 8
    assert n == 6 + 2 * len(seccomp.DENIED_X86_64) + 7 and n < 4096  # BPF_MAXINSNS

"""What a program can see and touch under namespace isolation (real namespaces, no mocks)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox_worker import isolation
from sandbox_worker.executor import NPROC, Executor
from sandbox_worker.protocol import Job, JobResult, RunStatus
from sandbox_worker.protocol import TestStatus as TS

REPO = Path(__file__).resolve().parents[2]


def _probe(run: Callable[..., JobResult], body: str, expected: str,
           memory_mb: int = 512) -> JobResult:
    """Run `probe()` whose body is `body`; the test asserts its value equals `expected`."""
    code = "import os, socket, sys\ndef probe():\n" + "".join(
        f"    {line}\n" for line in body.splitlines())
    return run(code, [f"assert probe() == {expected}"], memory_mb=memory_mb)


@pytest.fixture(autouse=True)
def _needs_namespaces(isolated: Executor) -> None:
    """Every test here needs the namespace level."""


def test_level_is_reported(isolated: Executor) -> None:
    assert isolated.isolation == "namespaces"
    assert isolated.healthy()


def test_cannot_see_service_secrets() -> None:
    # the service holds a secret in its environment when the executor starts
    os.environ["CODEREWARD_API_KEYS"] = "super-secret-key"
    ex = Executor(1, isolation="namespaces")
    try:
        ex.start()
        code = ("import os, sys\ndef env():\n    return sorted(os.environ)\n"
                "def leaks():\n    return [k for k, v in os.environ.items() if 'secret' in v]"
                " + [a for a in sys.argv if 'secret' in a]")
        r = ex.run(Job(code=code, tests=["assert leaks() == []", "assert 'PATH' in env()",
                                         "assert not any('CODEREWARD' in k for k in env())"],
                       timeout_s=2, memory_mb=512))
        assert r.passed == 3, r
    finally:
        del os.environ["CODEREWARD_API_KEYS"]
        ex.close()


def test_repo_files_are_invisible(run: Callable[..., JobResult]) -> None:
    target = REPO / "service" / "config.py"
    assert target.exists()
    r = _probe(run, f"return os.path.exists({str(target)!r})", "False")
    assert r.tests[0].status is TS.PASSED, r
    r = _probe(run, f"open({str(target)!r}).read()\nreturn 1", "1")
    assert r.tests[0].status is TS.ERROR and "FileNotFoundError" in (r.tests[0].error or "")


def test_only_loopback_and_no_network(run: Callable[..., JobResult]) -> None:
    r = _probe(run, "return sorted(n for _, n in socket.if_nameindex())", "['lo']")
    assert r.tests[0].status is TS.PASSED, r
    r = _probe(run, "socket.create_connection(('1.1.1.1', 53), timeout=1)\nreturn 1", "1")
    assert r.tests[0].status is TS.ERROR and "OSError" in (r.tests[0].error or "")
    r = _probe(run, "socket.getaddrinfo('example.com', 80)\nreturn 1", "1")
    assert r.tests[0].status is TS.ERROR


def test_pid_one_and_alone(run: Callable[..., JobResult]) -> None:
    r = _probe(run, "return (os.getpid(), sorted(p for p in os.listdir('/proc') if p.isdigit()))",
               "(1, ['1'])")
    assert r.tests[0].status is TS.PASSED, r


def test_unprivileged_and_read_only_outside_tmp(run: Callable[..., JobResult]) -> None:
    r = _probe(run, "return (os.getuid() != 0, os.getcwd())", "(True, '/tmp')")
    assert r.tests[0].status is TS.PASSED, r
    for path in ("/usr/x", "/etc/x", "/x", "/proc/sys/kernel/hostname"):
        r = _probe(run, f"open({path!r}, 'w').write('x')\nreturn 1", "1")
        assert r.tests[0].status is TS.ERROR, (path, r)
    r = _probe(run, "open('/etc/shadow').read()\nreturn 1", "1")
    assert r.tests[0].status is TS.ERROR


def test_tmp_is_private_per_program(run: Callable[..., JobResult]) -> None:
    r = _probe(run, "open('/tmp/left-behind', 'w').write('x')\nreturn 1", "1")
    assert r.tests[0].status is TS.PASSED
    # empty but for the way to a Python installation that itself lives under /tmp (a venv in
    # a checkout there, as in CI clones), which is bound back read-only
    inst = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    expected = sorted({q.relative_to("/tmp").parts[0] for q in inst if q.is_relative_to("/tmp")})
    r = _probe(run, "return sorted(os.listdir('/tmp'))", repr(expected))
    assert r.tests[0].status is TS.PASSED, r
    assert not Path("/tmp/left-behind").exists()


def test_only_the_harness_pipes_are_open(run: Callable[..., JobResult]) -> None:
    r = _probe(run, "return len(os.listdir('/proc/self/fd'))", "6")  # 0-2, 2 pipes, listdir's
    assert r.tests[0].status is TS.PASSED, r


def test_memory_limit_applies(run: Callable[..., JobResult]) -> None:
    r = _probe(run, "b = bytearray(300 * 2**20)\nreturn len(b)", str(300 * 2**20), memory_mb=256)
    assert r.tests[0].status is TS.ERROR and "MemoryError" in (r.tests[0].error or "")


def test_no_state_shared_between_programs(run: Callable[..., JobResult]) -> None:
    # SysV shared memory left by one program must not be visible to the next
    make = ("import ctypes\nlibc = ctypes.CDLL(None)\n"
            "def probe():\n    return libc.shmget(0x5eed, 4096, 0o1666) >= 0")
    assert run(make, ["assert probe() == True"]).passed == 1
    see = ("import ctypes\nlibc = ctypes.CDLL(None)\n"
           "def probe():\n    return libc.shmget(0x5eed, 4096, 0o666) >= 0")
    assert run(see, ["assert probe() == False"]).passed == 1


BOMB_AT_LOAD = """
import os, time
while True:  # every process the uid may have
    try:
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
    except OSError:
        break
def f(x):
    time.sleep(6)  # holds them while the honest program runs
    return 1
"""
THREADS_AFTER_BOMB = """
import threading
def f(x):
    out = []
    t = threading.Thread(target=lambda: out.append(x + 1))
    t.start()
    t.join()
    return out[0]
"""


def _sandbox_processes() -> int:
    """Processes on this host owned by the sandbox uid range (seen from outside)."""
    lo, hi = isolation.HOST_UID_BASE, isolation.HOST_UID_BASE + isolation.SANDBOX_UIDS
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            n += lo <= os.stat(f"/proc/{pid}").st_uid < hi
        except OSError:
            continue
    return n


def test_fork_bomb_does_not_starve_a_concurrent_program(run: Callable[..., JobResult]) -> None:
    uids = {run("import os\ndef f():\n    return os.getuid()", ["assert f() == -1"]).tests[0].error
            for _ in range(2)}
    if len(uids) < 2:
        pytest.skip("this host maps one sandbox uid: RLIMIT_NPROC is shared by all programs")
    # programs cannot talk to each other (a network namespace each): the host watches the
    # bomb fill its uid's process limit, then starts the honest program
    with ThreadPoolExecutor(1) as pool:
        bomb = pool.submit(run, BOMB_AT_LOAD, ["assert f(1) == 1"], timeout_s=30.0)
        deadline = time.monotonic() + 20
        while _sandbox_processes() < NPROC - 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _sandbox_processes() >= NPROC - 8, "the bomb never filled its process limit"
        honest = run(THREADS_AFTER_BOMB, ["assert f(1) == 2"], timeout_s=30.0)
        assert honest.tests[0].status is TS.PASSED, honest
        assert bomb.result().status is RunStatus.OK


CROSSTALK_LISTEN = """
import socket, time
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.bind('\\0codereward-crosstalk')
u.listen(1)
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    t.bind(('127.0.0.1', 45678)); t.listen(1)
except OSError:
    pass
def f():
    time.sleep(3)
    return 1
"""
CROSSTALK_PROBE = """
import socket, time
def reach():
    time.sleep(1.0)
    out = []
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect('\\0codereward-crosstalk'); out.append('unix')
    except OSError:
        pass
    try:
        socket.create_connection(('127.0.0.1', 45678), timeout=0.5); out.append('tcp')
    except OSError:
        pass
    return out
"""


def test_programs_cannot_reach_each_other(run: Callable[..., JobResult]) -> None:
    # a network namespace per program: abstract unix sockets and loopback ports are its own
    with ThreadPoolExecutor(1) as pool:
        listener = pool.submit(run, CROSSTALK_LISTEN, ["assert f() == 1"])
        time.sleep(0.3)
        probe = run(CROSSTALK_PROBE, ["assert reach() == []"])
        assert probe.passed == 1, probe.tests[0].error
        assert listener.result().passed == 1


NET_INODE = """
import os
def net():
    return os.stat('/proc/self/ns/net').st_ino
"""
LEAVE_SOCKETS = """
import array, socket
def leave():
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind('\\0codereward-left')
    listener.listen(1)
    # a datagram socket queued inside itself (SCM_RIGHTS): it outlives its program until the
    # kernel's collector runs, still bound to its name
    loop = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    loop.bind('\\0codereward-inflight')
    fds = array.array('i', [loop.fileno(), listener.fileno()])
    loop.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)], 0,
                 '\\0codereward-inflight')
    return 1
"""
FIND_LEFT = """
import socket
def left():
    found = []
    for name in ('codereward-left', 'codereward-inflight'):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_UNIX, kind) as s:
                try:
                    s.connect('\\0' + name); found.append(name)
                except OSError:
                    pass
    return found, open('/proc/net/unix').read().count('\\n')
"""


def test_network_namespaces_are_reused_only_empty(run: Callable[..., JobResult]) -> None:
    # one after another, programs join pooled namespaces (no fresh netns per program) ...
    inodes = set()
    for _ in range(12):
        result = run(NET_INODE, ["assert net() == -1"])
        inodes.add(result.tests[0].error)
    assert len(inodes) < 12, "every program got a fresh network namespace: no pool"
    # ... but none finds what an earlier program left behind (a socket kept in flight is
    # collected by the kernel when its program dies; the pool's own check of a namespace it
    # takes back is tested alone below)
    for _ in range(3):
        assert run(LEAVE_SOCKETS, ["assert leave() == 1"]).passed == 1
        for _ in range(4):
            probe = run(FIND_LEFT, ["assert left() == ([], 1)"])
            assert probe.passed == 1, probe.tests[0].error


NET_POOL_CHECK = """
import os, socket, sys
sys.path.insert(0, sys.argv[1])
from sandbox_worker import isolation, zygote
isolation.enter_namespaces()
pool = zygote._NetPool()
kinds = {
    'unix stream': lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),
    'unix datagram, unbound': lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM),
    'tcp, unbound': lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
    'udp6': lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM),
    'raw': lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
    'packet': lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW),
    'netlink': lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW),
}
held = []
for pid, (kind, make) in enumerate(kinds.items(), 101):
    dirty = pool.take()
    dirty_ino = os.fstat(dirty).st_ino
    pool.lend(dirty, pid)
    isolation.setns(dirty, isolation.CLONE_NEWNET)
    held.append(make())  # still open when its child is reaped
    isolation.setns(pool.own, isolation.CLONE_NEWNET)
    pool.give_back(pid)
    assert pool.free == [], f'a namespace holding a {kind} socket went back to the pool'
clean = pool.take()
assert os.fstat(clean).st_ino != dirty_ino, 'a namespace holding a socket was lent again'
pool.lend(clean, 200)
pool.give_back(200)
assert pool.free == [clean] and pool.take() == clean, 'an empty namespace was not reused'
print('ok')
"""


def test_net_pool_takes_back_only_empty_namespaces() -> None:
    out = subprocess.run([sys.executable, "-c", NET_POOL_CHECK, str(REPO)],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr

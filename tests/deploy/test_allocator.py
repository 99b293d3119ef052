"""The server's glibc malloc tuning (service/allocator.py): when it re-executes, that the
tunables really stop freed model buffers from being faulted in again, and that a started
service runs with them (or without, when told)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service import allocator
from tests.deploy.service_proc import ServiceProcess

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")

# a 100 MiB buffer written, freed and written again on a second thread (as a model thread
# does per item): prints the page faults of the second round
_REUSE = """
import ctypes, resource, threading
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def touch():
    p = libc.malloc(100 << 20)
    ctypes.memset(p, 1, 100 << 20)
    libc.free(p)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
t = threading.Thread(target=touch); t.start(); t.join()
before = faults()
t = threading.Thread(target=touch); t.start(); t.join()
print(faults() - before)
"""


def second_round_faults(env: dict[str, str]) -> int:
    out = subprocess.run([sys.executable, "-c", _REUSE], env=env, capture_output=True,
                         text=True, check=True, timeout=60)
    return int(out.stdout.strip())


@glibc
def test_tunables_make_glibc_reuse_a_freed_big_buffer() -> None:
    plain = {k: v for k, v in os.environ.items()
             if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}
    tuned = allocator.tuned_environment(plain, enabled=True)
    assert tuned is not None
    assert second_round_faults(plain) > 20_000  # 25,600 pages of 4 KiB, faulted in again
    assert second_round_faults(tuned) < 2_000


def test_tuned_environment_leaves_the_users_choices_alone() -> None:
    base = {"PATH": "/usr/bin"}
    env = allocator.tuned_environment(base, enabled=True, libc="glibc")
    assert env == {**base, "GLIBC_TUNABLES": allocator.TUNABLES, allocator.MARK: "1"}
    assert allocator.is_tuned(env)
    assert allocator.tuned_environment(base, enabled=False, libc="glibc") is None
    assert allocator.tuned_environment(base, enabled=True, libc="") is None  # musl
    assert allocator.tuned_environment(env, enabled=True, libc="glibc") is None  # re-executed
    for own in ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}, {"MALLOC_ARENA_MAX": "4"}):
        assert allocator.tuned_environment({**base, **own}, enabled=True, libc="glibc") is None
    allocator.forget(env)
    assert env == base  # what children inherit
    user = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}
    allocator.forget(user)
    assert user == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}  # not ours: kept


def started_environ(tmp_path: Path, **settings: str) -> tuple[dict[str, str], str]:
    svc = ServiceProcess(Path("unused"), tmp_path / "service.log", models="none", **settings)
    try:
        svc.wait_ready()
        assert httpx.get(svc.url + "/healthz", timeout=5).status_code == 200
        raw = Path(f"/proc/{svc.proc.pid}/environ").read_bytes()
    finally:
        svc.stop()
    # glibc may cut GLIBC_TUNABLES in place while parsing it: read names, not values
    env = dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)
    return env, svc.logs()


@glibc
def test_the_service_reexecutes_itself_with_the_tunables(tmp_path: Path) -> None:
    env, logs = started_environ(tmp_path)
    assert env.get(allocator.MARK) == "1" and "GLIBC_TUNABLES" in env
    assert "allocator: glibc tuned" in logs


@glibc
def test_malloc_tuning_false_starts_the_service_as_is(tmp_path: Path) -> None:
    env, logs = started_environ(tmp_path, malloc_tuning="false")
    assert allocator.MARK not in env and "GLIBC_TUNABLES" not in env
    assert "allocator: default" in logs

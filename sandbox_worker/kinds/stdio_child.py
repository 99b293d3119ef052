"""Runs inside the sandboxed child for `stdio` jobs: one forked process per case, stdout captured.

The child never sees an expected output: it runs the program on each case's input and sends
back the bytes the program wrote, how it ended and the head of its stderr; the trusted
supervisor (kinds/stdio.py) compares. A Python program is compiled once and every case is a
fork of this warm interpreter (no interpreter start); a compiled program is an exec of its
binary. The child is pid 1 of its own pid namespace, so after every case everything the
program left running is killed. It is non-dumpable: a program (same uid) cannot ptrace it or
open its fds through /proc.

Frames: first {"kind": "stdio", "mode": "python"|"exec"|"compile", ...}, answered
{"t": "ok"} or {"t": "syntax", "e"}; a compile is answered {"t": "ok", "files"} or
{"t": "compile", "e"}. Then per case {"n", "input", "timeout_s"}, answered
{"n", "out" (base64), "rc", "sig", "why" (""|"timeout"|"output"), "err", "ms"}.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import os
import resource
import select
import signal
import sys
import time
import traceback
from typing import Any

from sandbox_worker import isolation, wire
from sandbox_worker.clock import STARVED_FACTOR, StarvationClock

ERR_CHARS = 300  # stderr head sent back
MAX_REQUEST_BYTES = 256 * 1024 * 1024  # a case input or a compiled artefact
PROG_DIR = "/tmp/prog"
PR_SET_DUMPABLE = 4


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _into_case(fds: tuple[int, int, int], memory_mb: int | None, cpu_s: int) -> None:
    """In the forked case process: own process group, the case's fds as 0/1/2, nothing else."""
    os.setpgid(0, 0)
    for src, dst in zip(fds, (0, 1, 2), strict=True):
        os.dup2(src, dst)
    os.closerange(3, 1 << 20)  # the report channel to the supervisor is gone from here on
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if memory_mb is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))


def _run_python(code: Any) -> None:
    """Execute the compiled program as __main__ in this (forked, warm) interpreter."""
    for name in [m for m in sys.modules if m.split(".")[0] == "sandbox_worker"]:
        sys.modules.pop(name, None)
    sys.argv = ["main.py"]
    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    glb: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    rc = 0
    try:
        exec(code, glb)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc(limit=-3)
        rc = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            rc = rc or 1
    os._exit(rc & 0xFF)


def _kill_leftovers(pid: int, reaped: bool) -> None:
    """Kill the case's process and everything it started, and reap them."""
    init = os.getpid() == 1
    if init:  # pid-namespace init: -1 reaches every other process in it
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)
    else:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    if not reaped:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    # as init every leftover is our child and dying: wait for all (no zombie is left to
    # the next case); otherwise only those already gone
    while True:
        try:
            other, _ = os.waitpid(-1, 0 if init else os.WNOHANG)
        except ChildProcessError:
            return
        if other == 0:
            return


def _capture(out_r: int, pid: int, timeout_s: float, cap: int) -> tuple[bytes, str, int]:
    """Read the case's stdout until it exits, times out or floods; returns out, why, status.

    The limit is wall-clock, extended (as for asserts, clock.py) while the case is runnable
    but starved of CPU by a busy host."""
    pidfd = os.pidfd_open(pid)
    clock = StarvationClock(pid)
    deadline = clock.start(timeout_s)
    cap_at = time.monotonic() + STARVED_FACTOR * timeout_s
    chunks: list[bytes] = []
    size, why, status = 0, "", -1
    try:
        eof = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if time.monotonic() < cap_at and clock.starved():
                    deadline = time.monotonic() + 0.05
                    continue
                why = "timeout"
                break
            watch = [pidfd] if eof else [out_r, pidfd]
            ready = select.select(watch, [], [], left)[0]
            if out_r in ready:
                data = os.read(out_r, 1 << 16)
                if not data:
                    eof = True
                    continue
                chunks.append(data)
                size += len(data)
                if size > cap:
                    why = "output"
                    break
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
                os.set_blocking(out_r, False)  # drain what is left (a leftover may hold it)
                with contextlib.suppress(BlockingIOError):
                    while size <= cap and (data := os.read(out_r, 1 << 16)):
                        chunks.append(data)
                        size += len(data)
                why = "output" if size > cap else ""
                break
    finally:
        os.close(pidfd)
    _kill_leftovers(pid, reaped=status != -1)
    return b"".join(chunks)[: cap + 1], why, status


def run_one(run: Any, stdin: bytes, timeout_s: float, cap: int, memory_mb: int | None,
            env: dict[str, str]) -> dict[str, Any]:
    """Run one case: `run` is a code object (Python) or an argv list (exec)."""
    in_fd = _memfd("stdin", stdin)
    err_fd = os.memfd_create("stderr", 0)
    out_r, out_w = os.pipe()
    cpu_s = int(timeout_s) + 1
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the case process
        try:
            _into_case((in_fd, out_w, err_fd), memory_mb, cpu_s)
            if isinstance(run, list):
                os.execve(run[0], run, env)
            _run_python(run)
        finally:
            os._exit(127)
    os.close(out_w)
    os.close(in_fd)
    try:
        out, why, status = _capture(out_r, pid, timeout_s, cap)
    finally:
        os.close(out_r)
    ms = (time.monotonic() - start) * 1000.0
    os.lseek(err_fd, 0, os.SEEK_SET)
    err = os.read(err_fd, ERR_CHARS * 4).decode("utf-8", "replace")[-ERR_CHARS:]
    os.close(err_fd)
    rc = os.WEXITSTATUS(status) if status != -1 and os.WIFEXITED(status) else -1
    sig = os.WTERMSIG(status) if status != -1 and os.WIFSIGNALED(status) else 0
    if sig == signal.SIGXCPU:
        why = why or "timeout"
    return {"out": base64.b64encode(out).decode(), "rc": rc, "sig": sig, "why": why,
            "err": err, "ms": round(ms, 3)}


def _write_files(files: dict[str, str], mode: int) -> None:
    os.makedirs(PROG_DIR, exist_ok=True)
    for name, data in files.items():
        path = os.path.join(PROG_DIR, os.path.basename(name))
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(data))
        os.chmod(path, mode)


def _collect(sources: dict[str, str], suffixes: list[str]) -> dict[str, str]:
    """Artefacts the compiler left in PROG_DIR (recursively: javac writes packages)."""
    files: dict[str, str] = {}
    for root, _, names in os.walk("."):
        for name in sorted(names):
            rel = os.path.normpath(os.path.join(root, name))
            if rel in sources or not any(rel.endswith(s) for s in suffixes):
                continue
            with open(rel, "rb") as fh:
                files[rel] = base64.b64encode(fh.read()).decode()
    return files


def _compile(wfd: int, msg: dict[str, Any], env: dict[str, str]) -> None:
    """Compile inside this sandbox: sources in, artefacts (or a bounded error) out."""
    sources: dict[str, str] = msg["sources"]
    _write_files({k: base64.b64encode(v.encode()).decode() for k, v in sources.items()}, 0o600)
    os.chdir(PROG_DIR)
    answer = run_one(list(msg["argv"]), b"", float(msg["timeout_s"]), int(msg["cap"]),
                     msg.get("memory_mb"), env)
    out = base64.b64decode(answer["out"]).decode("utf-8", "replace")
    if answer["why"] or answer["rc"] != 0:
        why = {"timeout": "compile timed out", "output": "compiler output over the cap"}
        head = why.get(answer["why"], f"compiler exit {answer['rc']} signal {answer['sig']}")
        text = (out + answer["err"]).strip()
        wire.send(wfd, {"t": "compile", "e": f"{head}: {text}"[:ERR_CHARS * 4]})
        return
    files = _collect(sources, list(msg["artefacts"]))
    if not files:
        wire.send(wfd, {"t": "compile", "e": "the compiler produced no program"})
        return
    wire.send(wfd, {"t": "ok", "files": files})


def serve(rfd: int, wfd: int, msg: dict[str, Any]) -> None:
    """Entry from the harness: answer the first frame `msg`, then case requests until EOF."""
    isolation.prctl(PR_SET_DUMPABLE, 0)
    resource.setrlimit(resource.RLIMIT_CPU, (int(msg["cpu_s"]),) * 2)
    memory_mb = int(msg["memory_mb"]) if msg.get("memory_mb") else None
    env = {**os.environ, **{str(k): str(v) for k, v in msg.get("env", {}).items()}}
    run: Any
    if msg["mode"] == "compile":
        _compile(wfd, msg, env)
        return
    if msg["mode"] == "python":
        try:
            run = compile(msg["code"], "main.py", "exec")
        except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
            wire.send(wfd, {"t": "syntax", "e": f"{type(exc).__name__}: {exc}"[:ERR_CHARS]})
            return
    else:
        _write_files(msg["files"], 0o500)
        os.chdir(PROG_DIR)
        run = list(msg["argv"])
    wire.send(wfd, {"t": "ok"})
    cap = int(msg["cap"])
    while True:
        try:
            req = wire.recv(rfd, max_bytes=MAX_REQUEST_BYTES)
        except wire.WireError:
            return
        answer = run_one(run, str(req["input"]).encode("utf-8"), float(req["timeout_s"]), cap,
                         memory_mb, env)
        wire.send(wfd, {"n": req["n"], **answer})

"""glibc malloc settings for the server process, applied by re-executing it once at start.

Scoring allocates large short-lived buffers per item: CTranslate2's logits for every position
(tokens × 49,152 × 4 B, 64 MB for a 325-token HumanEval item on the default model) and torch's
activations. With glibc's defaults each model thread gets its own arena, an mmap'd heap of at
most 64 MiB, and bigger blocks are fresh mmaps, so each item faults in and zeroes those pages
again: 3.1 M page faults for 96 items on the int8 engine. One arena, with mmap and trim
thresholds above any such buffer, keeps freed memory for reuse: 0.25 M faults, and 11-13%
more items/s for the int8 engine in-process, 4-12% for fp32 torch (BENCHMARKS.md §6). The
cost: the server keeps its peak heap instead of handing it back to the kernel.

glibc reads its tunables only when a process starts, hence the re-exec, done before the heavy
imports. The variables are then dropped from `os.environ`, so the server's children (sandbox
zygotes start from a fixed environment anyway) do not inherit them. A user's own
`GLIBC_TUNABLES` or `MALLOC_*` variables win: nothing is changed then.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, MutableMapping

TUNABLES = ("glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=1073741824:"
            "glibc.malloc.trim_threshold=4294967296")
MARK = "_CODEREWARD_MALLOC_TUNED"  # set in the re-executed process's environment


def tuned_environment(environ: Mapping[str, str], *, enabled: bool,
                      libc: str | None = None) -> dict[str, str] | None:
    """The environment to re-execute the server with, or None to run as is: tuning is off,
    the C library is not glibc, the user set GLIBC_TUNABLES or a MALLOC_ variable, or this
    process is the re-executed one."""
    libc = platform.libc_ver()[0] if libc is None else libc
    if (not enabled or MARK in environ or libc != "glibc" or "GLIBC_TUNABLES" in environ
            or any(k.startswith("MALLOC_") for k in environ)):
        return None
    return {**environ, "GLIBC_TUNABLES": TUNABLES, MARK: "1"}


def is_tuned(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process was started with the tuned allocator (before `forget`)."""
    return environ.get(MARK) == "1" and environ.get("GLIBC_TUNABLES") == TUNABLES


def forget(environ: MutableMapping[str, str] = os.environ) -> None:
    """Drop the tunables from the environment children would inherit (they stay in effect
    for this process: glibc read them at its start)."""
    if environ.pop(MARK, None) is not None:
        environ.pop("GLIBC_TUNABLES", None)


def reexec_tuned(*, enabled: bool) -> bool:
    """Re-execute this interpreter with the tuned allocator where `tuned_environment` says so
    (does not return then); otherwise return whether this process runs tuned, and forget."""
    env = tuned_environment(os.environ, enabled=enabled)
    if env is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    tuned = is_tuned()
    forget()
    return tuned

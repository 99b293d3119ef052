"""The languages a job may be written in, and how each is compiled and run in the sandbox.

Toolchains are looked up on the sandbox's PATH (the system dirs it mounts read-only), so a
compiler that only a user's home holds (e.g. ~/.cargo/bin) does not count as available.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sandbox_worker.isolation import CLEAN_ENV

PROG_DIR = "/tmp/prog"  # where the child writes sources and artefacts (stdio_child.PROG_DIR)


@dataclass(frozen=True)
class Language:
    """How to build and run one language; argv entries may use {memory_mb}."""

    name: str
    source: str  # file name the program is written to
    tool: str  # the binary whose presence (and version) makes the language available
    compile: tuple[str, ...] = ()  # empty: nothing to compile (interpreted)
    artefacts: tuple[str, ...] = ()  # suffixes (or names) of what the compile leaves
    run: tuple[str, ...] = ()  # argv of one case
    # runtimes that reserve address space up front (JVM, V8, Go) get their own heap limit in
    # `run` and this much more address space (RLIMIT_AS) than the job's memory_mb
    extra_as_mb: int = 0
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, memory_mb: int) -> list[str]:
        """The run argv for a job with `memory_mb`."""
        return [a.format(memory_mb=memory_mb) for a in self.run]


_P = PROG_DIR
_JVM = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:CompressedClassSpaceSize=64m",
        "-XX:ReservedCodeCacheSize=64m", "-XX:MaxMetaspaceSize=256m", "-Xshare:auto")
_JVM_COMPILE = ("-J-Xmx768m", *(f"-J{flag}" for flag in _JVM[:5]))
LANGUAGES: dict[str, Language] = {lang.name: lang for lang in (
    Language("python", "main.py", "python3"),  # run in the warm interpreter, never exec'd
    Language("c", "main.c", "gcc", ("gcc", "-O2", "-std=gnu11", "-pipe", "-o", "main", "main.c",
                                    "-lm"), ("main",), (f"{_P}/main",)),
    Language("cpp", "main.cpp", "g++", ("g++", "-O2", "-std=gnu++17", "-pipe", "-o", "main",
                                        "main.cpp"), ("main",), (f"{_P}/main",)),
    Language("rust", "main.rs", "rustc", ("rustc", "-O", "--edition", "2021", "-o", "main",
                                          "main.rs"), ("main",), (f"{_P}/main",)),
    Language("go", "main.go", "go", ("go", "build", "-o", "main", "main.go"), ("main",),
             (f"{_P}/main",), extra_as_mb=1024,
             env={"GOCACHE": "/tmp/gocache", "GOPATH": "/tmp/go", "GO111MODULE": "off",
                  "CGO_ENABLED": "0"}),
    # the JVM reserves address space beyond its heap (class space, code cache, thread stacks):
    # those reservations are made small and the limit is the heap plus a fixed allowance
    Language("java", "Main.java", "javac", ("javac", "-encoding", "UTF-8", *_JVM_COMPILE,
                                            "Main.java"),
             (".class",), ("java", "-Xmx{memory_mb}m", "-Xss64m", *_JVM, "-cp", _P, "Main"),
             extra_as_mb=2048),
    Language("javascript", "main.js", "node", (), (),
             ("node", "--max-old-space-size={memory_mb}", f"{_P}/main.js"),
             extra_as_mb=1024),
)}
ALIASES = {"c++": "cpp", "cxx": "cpp", "py": "python", "python3": "python", "js": "javascript",
           "node": "javascript", "rs": "rust", "golang": "go"}


def canonical(name: str) -> str:
    """The registry name of a language name as users write it (`C++` -> `cpp`)."""
    key = name.strip().lower()
    return ALIASES.get(key, key)


@functools.cache
def tool_path(tool: str) -> str | None:
    """Absolute path of `tool` on the sandbox's PATH, or None."""
    return shutil.which(tool, path=CLEAN_ENV["PATH"])


@functools.cache
def version(name: str) -> str | None:
    """First line of the toolchain's version output (part of the compile cache key)."""
    lang = LANGUAGES[name]
    if name == "python":  # programs run in the executor's own interpreter, forked
        return f"Python {sys.version.split()[0]}"
    path = tool_path(lang.tool)
    if path is None:
        return None
    flag = "version" if lang.tool == "go" else "--version"
    try:
        out = subprocess.run([path, flag], capture_output=True, text=True, timeout=20,
                             env=dict(CLEAN_ENV), check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else path


_PROBE_LOCK = threading.Lock()
_AVAILABLE: list[dict[str, str]] = []  # the probe's answer, once made


def available() -> dict[str, str]:
    """Languages whose toolchain is present, with its version line (probed once, in
    parallel: the JVM's `javac --version` alone takes half a second)."""
    with _PROBE_LOCK:
        if not _AVAILABLE:
            with ThreadPoolExecutor(len(LANGUAGES)) as pool:
                found = dict(zip(LANGUAGES, pool.map(version, LANGUAGES), strict=True))
            _AVAILABLE.append({n: v for n, v in found.items() if v is not None})
        return dict(_AVAILABLE[0])


def resolved(lang: Language, argv: tuple[str, ...]) -> list[str]:
    """`argv` with its first entry made absolute (execve does not search PATH)."""
    if not argv or argv[0].startswith("/"):
        return list(argv)
    path = tool_path(argv[0])
    if path is None:
        raise LookupError(f"{lang.name}: {argv[0]} not found")
    return [path, *argv[1:]]
